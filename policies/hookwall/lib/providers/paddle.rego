# Paddle Billing: Paddle-Signature "ts=<unix>;h1=<hex>[;h1=…]" is HMAC-SHA256 over "<ts>:<body>"
# with the notification destination's secret key; ts within 5 seconds (Paddle's own SDKs).
package hookwall.lib.providers.paddle

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods Paddle uses.
methods := {"POST"}

verify(secret) := providers.verify("paddle", secret, {})

verify_with(secret, opts) := providers.verify("paddle", secret, opts)

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the body's notification_id ("ntf_…"), signed with the body, the same on every
# retry. A body without it
# is keyed on its digest (id_key).
dedupe_key := providers.id_key("paddle", ["notification_id"])

# dedupe_ttl: Paddle retries for up to three days.
dedupe_ttl := "72h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# event is the body's event_type, e.g. "transaction.completed".
event := providers.body.event_type

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("paddle")
