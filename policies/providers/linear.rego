# Ready route policy for Linear webhooks; see docs/providers/linear.md.
#
#	[secrets]
#	linear = {env = "LINEAR_WEBHOOK_SECRET"}  # the webhook's signing secret
#
#	[[route]]
#	name = "linear"
#	path = "/hooks/linear"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "providers.linear"
#
# A request is forwarded when its signature verifies with the secret named "linear", once per
# natural delivery key, and at most 600 a minute from one address.
package providers.linear

import data.hookwall.providers.linear

default allow := false

allow if linear.allow("linear")

deny contains reason if some reason in linear.reasons("linear")

status := linear.status("linear")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := linear.dedupe if linear.verified("linear")

rate_limit := {"key": concat(":", ["linear", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["event"] := linear.event if linear.verified("linear")

labels["delivery"] := linear.dedupe_key if linear.verified("linear")
