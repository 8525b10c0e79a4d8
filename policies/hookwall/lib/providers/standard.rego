# Standard Webhooks (https://www.standardwebhooks.com): webhook-signature "v1,<base64> …" is
# HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>" with the whsec_<base64> secret;
# the timestamp within 5m, future ones too. The svix-* header names work the same.
package hookwall.lib.providers.standard

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego; dedupe_key_of, dedupe_of and labels_of below.

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

# dedupe_key_of(result) keys a delivery on the message id that a verify or verify_with result
# says its signature covers (the builtin's "id", given only when valid): the id of the headers
# the check read, whatever prefix verify_with named and whatever other id headers the request
# carries. Undefined unless result is valid, so a route that allows on the same result always
# has its key. The same on every retry; a fresh id breaks the signature.
dedupe_key_of(result) := providers.key("standard", result.id) if result.valid == true

# dedupe_of(result) is the dedupe obligation for a verify or verify_with result:
# `dedupe := standard.dedupe_of(sig)` beside `allow if sig.valid`.
dedupe_of(result) := {"key": dedupe_key_of(result), "ttl": dedupe_ttl}

# labels_of(result) is labels with the delivery keyed as dedupe_key_of keys it; undefined, and
# the body not parsed for the event, unless result is valid.
labels_of(result) := object.union({"event": e | e := event}, {"delivery": key}) if key := dedupe_key_of(result)

# dedupe_key is the message id read from the headers verify reads without a prefix (webhook-id,
# or svix-id): for verify(secret), and verify_with without opts.prefix, it is the id the
# signature covers. With a prefix it is not (verify reads other headers; webhook-id is then
# anyone's to choose), and a package that verifies under a prefix and refers to dedupe_key,
# dedupe or message_id is refused when the policies load: use dedupe_of(result).
dedupe_key := providers.key("standard", message_id)

# dedupe_ttl: senders retry for a day or more (Svix: about 28 hours).
dedupe_ttl := "72h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# event is the payload's "type", as the specification recommends.
event := providers.body.type

# message_id is the id the signature covers when verify was given no prefix: webhook-id when it
# is not empty, else svix-id. verify reads the svix- headers only when the webhook- ones are
# empty, so a svix-signed request with an empty webhook-id added still has its signed svix-id
# as key. engine/policy's TestStandardKeyIsTheVerifiedID holds it to the verifier's
# choice.
message_id := id if {
	id := input.request.headers["webhook-id"]
	id != ""
} else := input.request.headers["svix-id"]

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("standard")
