# Square: X-Square-Hmacsha256-Signature is base64 HMAC-SHA256 with the subscription's signature
# key over the notification URL followed by the body. The URL is the public one Square called:
# providers.public_url plus the request's path and query.
package hookwall.lib.providers.square

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods Square uses.
methods := {"POST"}

# defaults are the builtin options Square needs besides the secret; verify_with's opts win.
defaults := {"url": providers.public_url}

verify(secret) := providers.verify("square", secret, defaults)

verify_with(secret, opts) := providers.verify("square", secret, object.union(defaults, opts))

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the body's event_id, signed with the body, the same on every retry. A body without it
# is keyed on its digest (id_key).
dedupe_key := providers.id_key("square", ["event_id"])

# dedupe_ttl: Square retries for up to 72 hours after the event.
dedupe_ttl := "72h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# event is the body's "type", e.g. "payment.updated".
event := providers.body.type

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("square")
