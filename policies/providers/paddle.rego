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
#	policy = "providers.paddle"
#
# A request is forwarded when its signature verifies with the secret named "paddle", once per
# natural delivery key, and at most 600 a minute from one address.
package providers.paddle

import data.hookwall.providers.paddle

default allow := false

allow if paddle.allow("paddle")

deny contains reason if some reason in paddle.reasons("paddle")

status := paddle.status("paddle")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := paddle.dedupe if paddle.verified("paddle")

rate_limit := {"key": concat(":", ["paddle", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["event"] := paddle.event if paddle.verified("paddle")

labels["delivery"] := paddle.dedupe_key if paddle.verified("paddle")
