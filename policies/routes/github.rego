# The demo route of the default gateway.toml: GitHub webhooks.
#
# A delivery is forwarded when its X-Hub-Signature-256 matches the "github" secret, its event
# is one the backend handles, and the same signed body was not delivered before.
package routes.github

events := {"ping", "push", "pull_request", "issues", "release"}

sig := hookwall.webhook.verify("github", input.request, {"secret": "github"})

event := input.request.headers["x-github-event"]

default allow := false

allow if {
	sig.valid
	event in events
}

deny contains sprintf("signature: %s", [sig.reason]) if not sig.valid

deny contains sprintf("event %q is not accepted", [event]) if {
	sig.valid
	not event in events
}

# A bad or missing signature is an authentication failure, not a forbidden request.
status := 401 if not sig.valid

status := 422 if {
	sig.valid
	not event in events
}

# Forward each delivery once, keyed on the SHA-256 of the body, all that GitHub signs: a
# redelivery resends the same bytes, and a captured delivery replayed with a fresh
# X-GitHub-Delivery (not signed) is still the same key.
dedupe := {"key": concat(":", ["github", crypto.sha256(input.request.body)]), "ttl": "24h"} if sig.valid

rate_limit := {"key": concat(":", ["github", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels := {"event": event, "delivery": input.request.headers["x-github-delivery"]} if sig.valid
