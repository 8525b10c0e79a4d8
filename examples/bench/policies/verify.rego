# The GitHub route of issue 2: a delivery is forwarded when its signature verifies.
package bench.verify

allow if hookwall.webhook.verify("github", input.request, {"secret": "github"}).valid
