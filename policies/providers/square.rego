# Ready route policy for Square webhooks; see docs/providers/square.md.
#
#	[secrets]
#	square = {env = "SQUARE_WEBHOOK_SECRET"}  # the webhook subscription's signature key
#
#	[[route]]
#	name = "square"
#	path = "/hooks/square"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "providers.square"
#
# A request is forwarded when its signature verifies with the secret named "square", once per
# natural delivery key, and at most 600 a minute from one address.
#
# Square signs the public URL it called. Behind TLS termination or a proxy, set it as policy data,
# e.g. policies/hookwall/config/data.json: {"public_url": "https://hooks.example.com"}.
package providers.square

import data.hookwall.providers.square

default allow := false

allow if square.allow("square")

deny contains reason if some reason in square.reasons("square")

status := square.status("square")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := square.dedupe if square.verified("square")

rate_limit := {"key": concat(":", ["square", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["event"] := square.event if square.verified("square")

labels["delivery"] := square.dedupe_key if square.verified("square")
