# GitHub: X-Hub-Signature-256 "sha256=<hex>" is HMAC-SHA256 over the body with the webhook's
# secret, as configured in GitHub. No timestamp: a replay is stopped by the delivery id.
package hookwall.lib.providers.github

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods GitHub uses.
methods := {"POST"}

verify(secret) := providers.verify("github", secret, {})

verify_with(secret, opts) := providers.verify("github", secret, opts)

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the SHA-256 of the body, all that GitHub signs. X-GitHub-Delivery is not
# signed: keyed on it, a captured delivery replayed with a fresh GUID would be new. A
# redelivery resends the same bytes, and distinct events differ in their payloads.
dedupe_key := providers.key("github", providers.body_sha256)

# dedupe_ttl: GitHub never retries on its own; redeliveries are manual.
dedupe_ttl := "24h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# event is X-GitHub-Event, e.g. "push".
event := input.request.headers["x-github-event"]

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("github")
