# Svix: the Standard Webhooks scheme under the svix-id, svix-timestamp and svix-signature
# header names, which data.hookwall.lib.providers.standard accepts as well. The secret is the
# endpoint's signing secret (whsec_<base64>). Only the dedupe key's namespace differs.
package hookwall.lib.providers.svix

import data.hookwall.lib.providers
import data.hookwall.lib.providers.standard

methods := standard.methods

verify(secret) := standard.verify(secret)

verify_with(secret, opts) := standard.verify_with(secret, opts)

verified(secret) := standard.verified(secret)

reasons(secret) := standard.reasons(secret)

allow(secret) if standard.allow(secret)

status(secret) := standard.status(secret)

# dedupe_key is the message id the signature covers (svix-id, or webhook-id), the same on
# every retry.
dedupe_key := providers.key("svix", standard.message_id)

dedupe_ttl := standard.dedupe_ttl

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

event := standard.event

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("svix")
