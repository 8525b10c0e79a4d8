# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.discord and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "discord" holds the provider's vector secret).
package routes.providers.vectors.discord_epoch_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 0

# Vector rfc8032-test1-empty-message (expect valid).
test_rfc8032_test1_empty_message if {
	d := data.routes.providers.discord with input as {"request": req_rfc8032_test1_empty_message}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "discord:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "discord:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "ttl": "1h"}
	d.labels.delivery == "discord:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}

req_rfc8032_test1_empty_message := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/discord",
	"uri": "/hooks/discord",
	"headers": {
		"x-signature-timestamp": "",
		"x-signature-ed25519": "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
	},
	"body": "",
	"remote_ip": "192.0.2.10",
}
