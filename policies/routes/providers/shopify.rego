# Ready route policy for Shopify webhooks; see docs/providers/shopify.md.
#
#	[secrets]
#	shopify = {env = "SHOPIFY_WEBHOOK_SECRET"}  # the app's client secret (or the store's webhook signing secret)
#
#	[[route]]
#	name = "shopify"
#	path = "/hooks/shopify"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "routes.providers.shopify"
#
# A request is forwarded when its signature verifies with the secret named "shopify", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.shopify describes, for the secret named "shopify".
package routes.providers.shopify

import data.hookwall.lib.providers.shopify as provider

default allow := false

allow if provider.allow("shopify")

deny := provider.reasons("shopify")

status := provider.status("shopify")

# Keyed and labelled once verified: a key from the body costs a JSON parse, spent on genuine
# requests only.
dedupe := provider.dedupe if provider.verified("shopify")

labels := provider.labels if provider.verified("shopify")

rate_limit := provider.rate_limit
