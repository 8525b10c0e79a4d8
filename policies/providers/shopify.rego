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
#	policy = "providers.shopify"
#
# A request is forwarded when its signature verifies with the secret named "shopify", once per
# natural delivery key, and at most 600 a minute from one address.
package providers.shopify

import data.hookwall.providers.shopify

default allow := false

allow if shopify.allow("shopify")

deny contains reason if some reason in shopify.reasons("shopify")

status := shopify.status("shopify")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := shopify.dedupe if shopify.verified("shopify")

rate_limit := {"key": concat(":", ["shopify", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["event"] := shopify.event if shopify.verified("shopify")

labels["delivery"] := shopify.dedupe_key if shopify.verified("shopify")
