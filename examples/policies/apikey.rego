# API keys for senders that cannot sign: a key in a header, checked against stored hashes.
#
# [secrets] partner_keys = {file = "secrets/partner-keys"} holds one "sha256:<hex>" line per
# accepted key (printf %s "$KEY" | sha256sum). hookwall.apikey.verify hashes the presented
# key and compares it with every line in constant time; the keys themselves are stored
# nowhere, and the header is masked in the decision log. Issue long random keys (e.g.
# `openssl rand -hex 32`): the hash is unsalted. To rotate, add the new key's line, move
# the sender over, then delete the old line and reload.
package examples.apikey

default allow := false

allow if hookwall.apikey.verify(presented, "partner_keys")

# The key travels in X-Api-Key, or as "Authorization: Bearer <key>".
presented := input.request.headers["x-api-key"]

presented := trim_prefix(input.request.headers.authorization, "Bearer ") if {
	not input.request.headers["x-api-key"]
	startswith(input.request.headers.authorization, "Bearer ")
}

deny contains "missing API key" if not presented

deny contains "invalid API key" if {
	presented
	not allow
}

status := 401 if not allow
