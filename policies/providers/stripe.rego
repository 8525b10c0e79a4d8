# Ready route policy for Stripe webhooks; see docs/providers/stripe.md.
#
#	[secrets]
#	stripe = {env = "STRIPE_WEBHOOK_SECRET"}  # the endpoint's signing secret, whsec_… as Stripe shows it
#
#	[[route]]
#	name = "stripe"
#	path = "/hooks/stripe"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "providers.stripe"
#
# A request is forwarded when its signature verifies with the secret named "stripe", once per
# natural delivery key, and at most 600 a minute from one address.
package providers.stripe

import data.hookwall.providers.stripe

default allow := false

allow if stripe.allow("stripe")

deny contains reason if some reason in stripe.reasons("stripe")

status := stripe.status("stripe")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := stripe.dedupe if stripe.verified("stripe")

rate_limit := {"key": concat(":", ["stripe", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["event"] := stripe.event if stripe.verified("stripe")

labels["delivery"] := stripe.dedupe_key if stripe.verified("stripe")
