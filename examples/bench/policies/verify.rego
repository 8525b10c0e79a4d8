# The smallest GitHub route: a delivery is forwarded when its signature verifies.
package bench.verify

allow if hookwall.webhook.verify("github", input.request, {"secret": "github"}).valid
