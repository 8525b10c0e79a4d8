# Ready route policy for Twilio webhooks; see docs/providers/twilio.md.
#
#	[secrets]
#	twilio = {env = "TWILIO_WEBHOOK_SECRET"}  # the account's auth token
#
#	[[route]]
#	name = "twilio"
#	path = "/hooks/twilio"
#	methods = ["POST", "GET"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "providers.twilio"
#
# A request is forwarded when its signature verifies with the secret named "twilio", once per
# natural delivery key, and at most 600 a minute from one address.
#
# Twilio signs the public URL it called. Behind TLS termination or a proxy, set it as policy data,
# e.g. policies/hookwall/config/data.json: {"public_url": "https://hooks.example.com"}.
package providers.twilio

import data.hookwall.providers.twilio

default allow := false

allow if twilio.allow("twilio")

deny contains reason if some reason in twilio.reasons("twilio")

status := twilio.status("twilio")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := twilio.dedupe if twilio.verified("twilio")

rate_limit := {"key": concat(":", ["twilio", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["delivery"] := twilio.dedupe_key if twilio.verified("twilio")
