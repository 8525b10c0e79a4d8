# PagerDuty (v3 webhooks): X-PagerDuty-Signature "v1=<hex>[,v1=…]" is HMAC-SHA256 over the body
# with the subscription's secret; several during a rotation. No timestamp.
package hookwall.lib.providers.pagerduty

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods PagerDuty uses.
methods := {"POST"}

verify(secret) := providers.verify("pagerduty", secret, {})

verify_with(secret, opts) := providers.verify("pagerduty", secret, opts)

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the body's event.id, signed with the body, the same on every retry. A body without it
# is keyed on its digest (id_key).
dedupe_key := providers.id_key("pagerduty", ["event", "id"])

# dedupe_ttl: it covers PagerDuty's retries.
dedupe_ttl := "24h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# event is event.event_type, e.g. "incident.triggered".
event := providers.body.event.event_type

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("pagerduty")
