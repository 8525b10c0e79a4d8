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

# dedupe_key is the SHA-256 of what Twilio signs besides the public URL's base: the URI as
# received followed by, for a form body, each distinct decoded pair's name and value in order
# (a set iterates sorted, as the verifier sorts), joined as the signature joins them, with
# nothing between: not the body's bytes, nor the pairs apart. Reordered, repeated or
# re-encoded pairs, an empty "&" item, or bytes moved across a pair's "=" or "&" (Digits=1234
# and Digits1=234 sign alike) leave the signature valid: keyed otherwise, each such copy of a
# captured delivery would be new, and Twilio signs no timestamp. A body bound by a
# bodySHA256 query parameter is keyed on its bytes, which that hash fixes.
# I-Twilio-Idempotency-Token is not signed: keyed on it, a captured request replayed with a
# fresh token would be new. A retry resends the same URL and parameters. Ask for it once
# verified (as the ready policy does): a form body with a bad %-escape, which the verifier
# refuses, makes its evaluation fail.
dedupe_key := providers.key("twilio", signed_sha256)

signed_sha256 := providers.uri_body_sha256 if body_bound

else := crypto.sha256(concat("", array.concat([input.request.uri], [concat("", pair) | some pair in form_pairs])))

# body_bound: the URI's query names bodySHA256 (the verifier refuses it named twice).
body_bound if {
	some item in split(query, "&")
	cut_at_equals(item)[0] == "bodySHA256"
}

query := substring(input.request.uri, i + 1, -1) if {
	i := indexof(input.request.uri, "?")
	i >= 0
} else := ""

# form_pairs are the body's form parameters as the verifier reads them: "&" alone separates
# items, an empty item is skipped, a name without "=" has the empty value.
form_pairs contains [urlquery.decode(pair[0]), urlquery.decode(pair[1])] if {
	some item in split(input.request.body, "&")
	item != ""
	pair := cut_at_equals(item)
}

cut_at_equals(s) := [substring(s, 0, i), substring(s, i + 1, -1)] if {
	i := indexof(s, "=")
	i >= 0
} else := [s, ""]

# dedupe_ttl: it covers Twilio's retries.
dedupe_ttl := "24h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# labels are what the decision log records of a delivery: its dedupe key (Twilio names no event).
labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("twilio")
