# Ready route policy for PagerDuty webhooks; see docs/providers/pagerduty.md.
#
#	[secrets]
#	pagerduty = {env = "PAGERDUTY_WEBHOOK_SECRET"}  # the webhook subscription's secret
#
#	[[route]]
#	name = "pagerduty"
#	path = "/hooks/pagerduty"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "providers.pagerduty"
#
# A request is forwarded when its signature verifies with the secret named "pagerduty", once per
# natural delivery key, and at most 600 a minute from one address.
package providers.pagerduty

import data.hookwall.providers.pagerduty

default allow := false

allow if pagerduty.allow("pagerduty")

deny contains reason if some reason in pagerduty.reasons("pagerduty")

status := pagerduty.status("pagerduty")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := pagerduty.dedupe if pagerduty.verified("pagerduty")

rate_limit := {"key": concat(":", ["pagerduty", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["event"] := pagerduty.event if pagerduty.verified("pagerduty")

labels["delivery"] := pagerduty.dedupe_key if pagerduty.verified("pagerduty")
