# Twilio: X-Twilio-Signature is base64 HMAC-SHA1 with the account's auth token over the full
# URL plus the sorted form parameters (or the URL with bodySHA256 for JSON). The URL is the
# public one Twilio called: providers.public_url, tried with and without the default port.
package hookwall.lib.providers.twilio

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods Twilio uses.
methods := {"POST", "GET"}

# defaults are the builtin options Twilio needs besides the secret; verify_with's opts win.
defaults := {"url": providers.public_url}

verify(secret) := providers.verify("twilio", secret, defaults)

verify_with(secret, opts) := providers.verify("twilio", secret, object.union(defaults, opts))

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the SHA-256 of the URI and the body, what Twilio signs (with the public
# URL's base). I-Twilio-Idempotency-Token is not signed: keyed on it, a captured request
# replayed with a fresh token would be new. A retry resends the same URL and parameters.
dedupe_key := providers.key("twilio", providers.uri_body_sha256)

# dedupe_ttl: it covers Twilio's retries.
dedupe_ttl := "24h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# labels are what the decision log records of a delivery: its dedupe key (Twilio names no event).
labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("twilio")
