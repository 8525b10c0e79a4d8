# Ready route policy for Svix webhooks; see docs/providers/svix.md.
#
#	[secrets]
#	svix = {env = "SVIX_WEBHOOK_SECRET"}  # the endpoint's signing secret, whsec_<base64>
#
#	[[route]]
#	name = "svix"
#	path = "/hooks/svix"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "providers.svix"
#
# A request is forwarded when its signature verifies with the secret named "svix", once per
# natural delivery key, and at most 600 a minute from one address.
package providers.svix

import data.hookwall.providers.svix

default allow := false

allow if svix.allow("svix")

deny contains reason if some reason in svix.reasons("svix")

status := svix.status("svix")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := svix.dedupe if svix.verified("svix")

rate_limit := {"key": concat(":", ["svix", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["event"] := svix.event if svix.verified("svix")

labels["delivery"] := svix.dedupe_key if svix.verified("svix")
