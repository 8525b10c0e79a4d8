# SendGrid (Twilio SendGrid Event Webhook): X-Twilio-Email-Event-Webhook-Signature is a base64
# DER ECDSA P-256 signature over "<X-Twilio-Email-Event-Webhook-Timestamp><body>" (SHA-256).
# The secret is the verification public key (base64 DER, as SendGrid shows it, or PEM).
package hookwall.lib.providers.sendgrid

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods SendGrid uses.
methods := {"POST"}

verify(secret) := providers.verify("sendgrid", secret, {})

verify_with(secret, opts) := providers.verify("sendgrid", secret, opts)

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the SHA-256 of the body: a batch of events carries one sg_event_id per event,
# not one per request, and a retry resends the same batch bytes.
dedupe_key := providers.key("sendgrid", providers.body_sha256)

# dedupe_ttl: SendGrid retries for up to 24 hours.
dedupe_ttl := "48h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# labels are what the decision log records of a delivery: its dedupe key (SendGrid names no event).
labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("sendgrid")
