# Zoom: x-zm-signature "v0=<hex>" is HMAC-SHA256 over "v0:<x-zm-request-timestamp>:<body>" with
# the app's secret token; the timestamp within 5m.
package hookwall.lib.providers.zoom

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods Zoom uses.
methods := {"POST"}

verify(secret) := providers.verify("zoom", secret, {})

verify_with(secret, opts) := providers.verify("zoom", secret, opts)

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the SHA-256 of the body: Zoom sends no delivery id, and a retry resends the
# same bytes (event and event_ts included). Hashing needs no JSON parse.
dedupe_key := providers.key("zoom", providers.body_sha256)

# dedupe_ttl: Zoom retries three times within two hours.
dedupe_ttl := "24h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# event is the body's "event", e.g. "meeting.started".
event := providers.body.event

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("zoom")
