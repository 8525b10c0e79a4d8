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
#	policy = "routes.providers.twilio"
#
# A request is forwarded when its signature verifies with the secret named "twilio", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.twilio describes, for the secret named "twilio".
#
# Twilio signs the public URL it called. Behind TLS termination or a proxy, set it as policy data,
# e.g. policies/hookwall/config/data.json: {"public_url": "https://hooks.example.com"}.
package routes.providers.twilio

import data.hookwall.lib.providers.twilio as provider

default allow := false

allow if provider.allow("twilio")

deny := provider.reasons("twilio")

status := provider.status("twilio")

# Keyed and labelled once verified: a key from the body costs a JSON parse, spent on genuine
# requests only.
dedupe := provider.dedupe if provider.verified("twilio")

labels := provider.labels if provider.verified("twilio")

rate_limit := provider.rate_limit
