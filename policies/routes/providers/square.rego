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
#	policy = "routes.providers.square"
#
# A request is forwarded when its signature verifies with the secret named "square", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.square describes, for the secret named "square".
#
# Square signs the public URL it called. Behind TLS termination or a proxy, set it as policy data,
# e.g. policies/hookwall/config/data.json: {"public_url": "https://hooks.example.com"}.
package routes.providers.square

import data.hookwall.lib.providers.square as provider

default allow := false

allow if provider.allow("square")

deny := provider.reasons("square")

status := provider.status("square")

# Keyed and labelled once verified: a key from the body costs a JSON parse, spent on genuine
# requests only.
dedupe := provider.dedupe if provider.verified("square")

labels := provider.labels if provider.verified("square")

rate_limit := provider.rate_limit
