# Shopify: X-Shopify-Hmac-Sha256 is base64 HMAC-SHA256 over the body with the app's client
# secret (or the store's webhook secret). No timestamp: a replay is stopped by the webhook id.
package hookwall.lib.providers.shopify

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods Shopify uses.
methods := {"POST"}

verify(secret) := providers.verify("shopify", secret, {})

verify_with(secret, opts) := providers.verify("shopify", secret, opts)

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the SHA-256 of the body, all that Shopify signs. X-Shopify-Event-Id (and
# X-Shopify-Webhook-Id, X-Shopify-Topic) are not signed: keyed on them, a captured delivery
# replayed with a fresh id would be new. A retry resends the same bytes.
dedupe_key := providers.key("shopify", providers.body_sha256)

# dedupe_ttl: Shopify retries for hours (8 times over 4 hours since 2024).
dedupe_ttl := "48h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# event is X-Shopify-Topic, e.g. "orders/create".
event := input.request.headers["x-shopify-topic"]

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("shopify")
