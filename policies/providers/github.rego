# Ready route policy for GitHub webhooks; see docs/providers/github.md.
#
#	[secrets]
#	github = {env = "GITHUB_WEBHOOK_SECRET"}  # the webhook's secret, as entered in GitHub
#
#	[[route]]
#	name = "github"
#	path = "/hooks/github"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "providers.github"
#
# A request is forwarded when its signature verifies with the secret named "github", once per
# natural delivery key, and at most 600 a minute from one address.
package providers.github

import data.hookwall.providers.github

default allow := false

allow if github.allow("github")

deny contains reason if some reason in github.reasons("github")

status := github.status("github")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := github.dedupe if github.verified("github")

rate_limit := {"key": concat(":", ["github", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["event"] := github.event if github.verified("github")

labels["delivery"] := github.dedupe_key if github.verified("github")
