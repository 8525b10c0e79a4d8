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
#	policy = "routes.providers.github"
#
# A request is forwarded when its signature verifies with the secret named "github", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.github describes, for the secret named "github".
package routes.providers.github

import data.hookwall.lib.providers.github as provider

default allow := false

allow if provider.allow("github")

deny := provider.reasons("github")

status := provider.status("github")

# Keyed and labelled once verified: a key from the body costs a JSON parse, spent on genuine
# requests only.
dedupe := provider.dedupe if provider.verified("github")

labels := provider.labels if provider.verified("github")

rate_limit := provider.rate_limit
