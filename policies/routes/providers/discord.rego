# Ready route policy for Discord webhooks; see docs/providers/discord.md.
#
#	[secrets]
#	discord = {env = "DISCORD_WEBHOOK_SECRET"}  # the application's public key, hex
#
#	[[route]]
#	name = "discord"
#	path = "/hooks/discord"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "routes.providers.discord"
#
# A request is forwarded when its signature verifies with the secret named "discord", once per
# dedupe key, and at most 600 a minute from one address: the decision the library
# data.hookwall.lib.providers.discord describes, for the secret named "discord".
package routes.providers.discord

import data.hookwall.lib.providers.discord as provider

default allow := false

allow if provider.allow("discord")

deny := provider.reasons("discord")

status := provider.status("discord")

# Keyed and labelled once verified: a key from the body costs a JSON parse, spent on genuine
# requests only.
dedupe := provider.dedupe if provider.verified("discord")

labels := provider.labels if provider.verified("discord")

rate_limit := provider.rate_limit
