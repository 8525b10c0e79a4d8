# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.discord and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "discord" holds the provider's vector secret).
package routes.providers.vectors.discord_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1700000000

# Vector discord-ed25519-rfc8032-key (expect valid).
test_discord_ed25519_rfc8032_key if {
	d := data.routes.providers.discord with input as {"request": req_discord_ed25519_rfc8032_key}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "discord:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "discord:e126f1dec85e7de6b6f24432180a115a86bdcbcbdbcc9a422a44fc913ad4cde8", "ttl": "1h"}
	d.labels.delivery == "discord:e126f1dec85e7de6b6f24432180a115a86bdcbcbdbcc9a422a44fc913ad4cde8"
	d.labels.event == 1
}

req_discord_ed25519_rfc8032_key := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/discord",
	"uri": "/hooks/discord",
	"headers": {
		"x-signature-timestamp": "1700000000",
		"x-signature-ed25519": "1695961a47c91a1ec033b819b7e87e3dbc583dd0cee6d1fd0216f58ac87b6228ae531ddbf91fb7bc28d7edf7f08604da16f54624f38a6bc0614e4dc13cd47f0f",
	},
	"body": "{\"type\":1}",
	"remote_ip": "192.0.2.10",
}

# Vector discord-ed25519-tampered (expect invalid: body changed (type 2)).
test_discord_ed25519_tampered if {
	d := data.routes.providers.discord with input as {"request": req_discord_ed25519_tampered}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_discord_ed25519_tampered := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/discord",
	"uri": "/hooks/discord",
	"headers": {
		"x-signature-timestamp": "1700000000",
		"x-signature-ed25519": "1695961a47c91a1ec033b819b7e87e3dbc583dd0cee6d1fd0216f58ac87b6228ae531ddbf91fb7bc28d7edf7f08604da16f54624f38a6bc0614e4dc13cd47f0f",
	},
	"body": "{\"type\":2}",
	"remote_ip": "192.0.2.10",
}
