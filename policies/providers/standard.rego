# Ready route policy for Standard Webhooks webhooks; see docs/providers/standard.md.
#
#	[secrets]
#	standard = {env = "STANDARD_WEBHOOK_SECRET"}  # the endpoint's secret, whsec_<base64>
#
#	[[route]]
#	name = "standard"
#	path = "/hooks/standard"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "providers.standard"
#
# A request is forwarded when its signature verifies with the secret named "standard", once per
# natural delivery key, and at most 600 a minute from one address.
package providers.standard

import data.hookwall.providers.standard

default allow := false

allow if standard.allow("standard")

deny contains reason if some reason in standard.reasons("standard")

status := standard.status("standard")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := standard.dedupe if standard.verified("standard")

rate_limit := {"key": concat(":", ["standard", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["event"] := standard.event if standard.verified("standard")

labels["delivery"] := standard.dedupe_key if standard.verified("standard")
