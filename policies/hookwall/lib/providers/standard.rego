# Standard Webhooks (https://www.standardwebhooks.com): webhook-signature "v1,<base64> …" is
# HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>" with the whsec_<base64> secret;
# the timestamp within 5m, future ones too. The svix-* header names work the same.
package hookwall.lib.providers.standard

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods a Standard Webhooks sender uses.
methods := {"POST"}

verify(secret) := providers.verify("standard", secret, {})

verify_with(secret, opts) := providers.verify("standard", secret, opts)

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the message id (webhook-id, or svix-id), the same on every retry and signed
# with the timestamp and the body.
dedupe_key := providers.key("standard", message_id)

# dedupe_ttl: senders retry for a day or more (Svix: about 28 hours).
dedupe_ttl := "72h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# event is the payload's "type", as the specification recommends.
event := providers.body.type

# message_id is the id the signature covers: webhook-id when it is not empty, else svix-id.
# verify reads the svix- headers only when the webhook- ones are empty, so a svix-signed
# request with an empty webhook-id added still has its signed svix-id as key.
message_id := id if {
	id := input.request.headers["webhook-id"]
	id != ""
} else := input.request.headers["svix-id"]

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("standard")
