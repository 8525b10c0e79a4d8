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
#	policy = "providers.slack"
#
# A request is forwarded when its signature verifies with the secret named "slack", once per
# natural delivery key, and at most 600 a minute from one address.
package providers.slack

import data.hookwall.providers.slack

default allow := false

allow if slack.allow("slack")

deny contains reason if some reason in slack.reasons("slack")

status := slack.status("slack")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := slack.dedupe if slack.verified("slack")

rate_limit := {"key": concat(":", ["slack", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["event"] := slack.event if slack.verified("slack")

labels["delivery"] := slack.dedupe_key if slack.verified("slack")
