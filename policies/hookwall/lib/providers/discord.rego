# Discord interactions: X-Signature-Ed25519 is a hex Ed25519 signature over
# "<X-Signature-Timestamp><body>". The secret is the application's public key (hex).
package hookwall.lib.providers.discord

import data.hookwall.lib.providers

# verify, verify_with, verified, reasons, allow, status, dedupe_key, dedupe, event, labels and
# rate_limit are described in providers.rego.

# methods are the HTTP methods Discord uses.
methods := {"POST"}

verify(secret) := providers.verify("discord", secret, {})

verify_with(secret, opts) := providers.verify("discord", secret, opts)

verified(secret) := verify(secret).valid

reasons(secret) := providers.reasons(verify(secret), methods)

allow(secret) if {
	verified(secret)
	count(reasons(secret)) == 0
}

status(secret) := providers.status(verify(secret), methods)

# dedupe_key is the interaction id in the body, signed with it. A body without it
# is keyed on its digest (id_key).
dedupe_key := providers.id_key("discord", ["id"])

# dedupe_ttl: Discord does not retry interactions; this stops replays.
dedupe_ttl := "1h"

dedupe := {"key": dedupe_key, "ttl": dedupe_ttl}

# event is the interaction type (1 ping, 2 application command, …).
event := providers.body.type

# labels are what the decision log records of a delivery: its event and its dedupe key.
labels["event"] := event

labels["delivery"] := dedupe_key

rate_limit := providers.rate_limit("discord")
