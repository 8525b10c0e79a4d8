# Ready route policy for SendGrid webhooks; see docs/providers/sendgrid.md.
#
#	[secrets]
#	sendgrid = {env = "SENDGRID_WEBHOOK_SECRET"}  # the verification public key, base64 DER as SendGrid shows it (or PEM)
#
#	[[route]]
#	name = "sendgrid"
#	path = "/hooks/sendgrid"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "providers.sendgrid"
#
# A request is forwarded when its signature verifies with the secret named "sendgrid", once per
# natural delivery key, and at most 600 a minute from one address.
package providers.sendgrid

import data.hookwall.providers.sendgrid

default allow := false

allow if sendgrid.allow("sendgrid")

deny contains reason if some reason in sendgrid.reasons("sendgrid")

status := sendgrid.status("sendgrid")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := sendgrid.dedupe if sendgrid.verified("sendgrid")

rate_limit := {"key": concat(":", ["sendgrid", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["delivery"] := sendgrid.dedupe_key if sendgrid.verified("sendgrid")
