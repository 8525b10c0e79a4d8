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

# dedupe_key_of(result), dedupe_of(result) and labels_of(result) key on the message id that a
# verify or verify_with result says its signature covers, as standard's do; use them with
# verify_with's opts.prefix (a sender's own header names).
dedupe_key_of(result) := providers.key("svix", result.id) if result.valid == true

dedupe_of(result) := {"key": dedupe_key_of(result), "ttl": dedupe_ttl}

labels_of(result) := object.union({"event": e | e := event}, {"delivery": key}) if key := dedupe_key_of(result)

# dedupe_key is the message id the signature covers (svix-id, or webhook-id) when verify is
# given no prefix, the same on every retry (see standard.dedupe_key).
dedupe_key := providers.key("svix", standard.message_id)

dedupe_ttl := standard.dedupe_ttl

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

event := standard.event

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("svix")
