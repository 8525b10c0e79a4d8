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
#	policy = "providers.discord"
#
# A request is forwarded when its signature verifies with the secret named "discord", once per
# natural delivery key, and at most 600 a minute from one address.
package providers.discord

import data.hookwall.providers.discord

default allow := false

allow if discord.allow("discord")

deny contains reason if some reason in discord.reasons("discord")

status := discord.status("discord")

# Keyed once verified: a key from the body costs a JSON parse, spent on genuine requests only.
dedupe := discord.dedupe if discord.verified("discord")

rate_limit := {"key": concat(":", ["discord", input.request.remote_ip]), "limit": 600, "per": "1m"}

labels["event"] := discord.event if discord.verified("discord")

labels["delivery"] := discord.dedupe_key if discord.verified("discord")
