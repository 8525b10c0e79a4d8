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
#	policy = "routes.providers.sendgrid"
#
# A request is forwarded when its signature verifies with the secret named "sendgrid", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.sendgrid describes, for the secret named "sendgrid".
package routes.providers.sendgrid

import data.hookwall.lib.providers.sendgrid as provider

default allow := false

allow if provider.allow("sendgrid")

deny := provider.reasons("sendgrid")

status := provider.status("sendgrid")

# Keyed and labelled once verified: a key from the body costs a JSON parse, spent on genuine
# requests only.
dedupe := provider.dedupe if provider.verified("sendgrid")

labels := provider.labels if provider.verified("sendgrid")

rate_limit := provider.rate_limit
