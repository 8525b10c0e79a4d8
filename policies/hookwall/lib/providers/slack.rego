# Slack: X-Slack-Signature "v0=<hex>" is HMAC-SHA256 over "v0:<ts>:<body>" with the app's
# signing secret; X-Slack-Request-Timestamp within 5m.
package hookwall.lib.providers.slack

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods Slack uses.
methods := {"POST"}

verify(secret) := providers.verify("slack", secret, {})

verify_with(secret, opts) := providers.verify("slack", secret, opts)

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the Events API event_id, signed with the body, which Slack keeps on its
# retries. Slash commands and interactivity payloads are form-encoded and carry none: they are
# keyed on the SHA-256 of the body, so one replayed within the tolerance is a duplicate.
dedupe_key := providers.id_key("slack", ["event_id"])

# dedupe_ttl: Slack retries three times within minutes.
dedupe_ttl := "1h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# event is the Events API event type, e.g. "app_mention".
event := providers.body.event.type

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("slack")
