# Ready route policy for Paddle webhooks; see docs/providers/paddle.md.
#
#	[secrets]
#	paddle = {env = "PADDLE_WEBHOOK_SECRET"}  # the notification destination's secret key
#
#	[[route]]
#	name = "paddle"
#	path = "/hooks/paddle"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "routes.providers.paddle"
#
# A request is forwarded when its signature verifies with the secret named "paddle", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.paddle describes, for the secret named "paddle".
package routes.providers.paddle

import data.hookwall.lib.providers.paddle as provider

default allow := false

allow if provider.allow("paddle")

deny := provider.reasons("paddle")

status := provider.status("paddle")

# Keyed and labelled once verified: a key from the body costs a JSON parse, spent on genuine
# requests only.
dedupe := provider.dedupe if provider.verified("paddle")

labels := provider.labels if provider.verified("paddle")

rate_limit := provider.rate_limit
