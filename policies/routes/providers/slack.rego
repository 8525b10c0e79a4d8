# Ready route policy for Slack webhooks; see docs/providers/slack.md.
#
#	[secrets]
#	slack = {env = "SLACK_WEBHOOK_SECRET"}  # the app's signing secret
#
#	[[route]]
#	name = "slack"
#	path = "/hooks/slack"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "routes.providers.slack"
#
# A request is forwarded when its signature verifies with the secret named "slack", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.slack describes, for the secret named "slack".
package routes.providers.slack

import data.hookwall.lib.providers.slack as provider

default allow := false

allow if provider.allow("slack")

deny := provider.reasons("slack")

status := provider.status("slack")

# Keyed and labelled once verified: a key from the body costs a JSON parse, spent on genuine
# requests only.
dedupe := provider.dedupe if provider.verified("slack")

labels := provider.labels if provider.verified("slack")

rate_limit := provider.rate_limit
