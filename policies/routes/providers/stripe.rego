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
#	policy = "routes.providers.stripe"
#
# A request is forwarded when its signature verifies with the secret named "stripe", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.stripe describes, for the secret named "stripe".
package routes.providers.stripe

import data.hookwall.lib.providers.stripe as provider

default allow := false

allow if provider.allow("stripe")

deny := provider.reasons("stripe")

status := provider.status("stripe")

# Keyed and labelled once verified: a key from the body costs a JSON parse, spent on genuine
# requests only.
dedupe := provider.dedupe if provider.verified("stripe")

labels := provider.labels if provider.verified("stripe")

rate_limit := provider.rate_limit
