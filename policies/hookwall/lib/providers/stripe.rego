# Stripe: Stripe-Signature "t=<unix>,v1=<hex>[,v1=…]" is HMAC-SHA256 over "<t>.<body>" with the
# endpoint's signing secret (whsec_…, used as is). Any v1 may match, v0 never; t within 5m.
package hookwall.lib.providers.stripe

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods Stripe uses.
methods := {"POST"}

verify(secret) := providers.verify("stripe", secret, {})

verify_with(secret, opts) := providers.verify("stripe", secret, opts)

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the event id in the body ("evt_…"), signed with the body, the same on every
# retry. A body without it
# is keyed on its digest (id_key).
dedupe_key := providers.id_key("stripe", ["id"])

# dedupe_ttl: Stripe retries for up to three days.
dedupe_ttl := "72h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# event is the body's "type", e.g. "invoice.paid".
event := providers.body.type

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("stripe")
