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
#	policy = "routes.providers.pagerduty"
#
# A request is forwarded when its signature verifies with the secret named "pagerduty", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.pagerduty describes, for the secret named "pagerduty".
package routes.providers.pagerduty

import data.hookwall.lib.providers.pagerduty as provider

default allow := false

allow if provider.allow("pagerduty")

deny := provider.reasons("pagerduty")

status := provider.status("pagerduty")

# Keyed and labelled once verified: a key from the body costs a JSON parse, spent on genuine
# requests only.
dedupe := provider.dedupe if provider.verified("pagerduty")

labels := provider.labels if provider.verified("pagerduty")

rate_limit := provider.rate_limit
