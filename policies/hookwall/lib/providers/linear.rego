# Linear: Linear-Signature is hex HMAC-SHA256 over the body with the webhook's signing secret.
# The timestamp is webhookTimestamp (ms) inside the body, read once the signature verified;
# the tolerance is 1 minute, as in Linear's SDK.
package hookwall.lib.providers.linear

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods Linear uses.
methods := {"POST"}

# defaults are the builtin options Linear needs besides the secret; verify_with's opts win.
defaults := {"tolerance": "1m"}

verify(secret) := providers.verify("linear", secret, defaults)

verify_with(secret, opts) := providers.verify("linear", secret, object.union(defaults, opts))

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the SHA-256 of the body, all that Linear signs (its webhookTimestamp
# included). Linear-Delivery is not signed: keyed on it, a captured delivery replayed within
# the tolerance with a fresh id would be new.
dedupe_key := providers.key("linear", providers.body_sha256)

# dedupe_ttl: Linear retries after a minute, an hour and six hours.
dedupe_ttl := "24h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# event is Linear-Event, e.g. "Issue".
event := input.request.headers["linear-event"]

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("linear")
