# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.linear and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "linear" holds the provider's vector secret).
package routes.providers.vectors.linear_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1700000030

# Vector linear-self-generated (expect valid).
test_linear_self_generated if {
	d := data.routes.providers.linear with input as {"request": req_linear_self_generated}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "linear:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "linear:40f049c3426d59f31bc5580f7635f84c7b87d596f2d0a78aacee91ea1e594f69", "ttl": "24h"}
	d.labels.delivery == "linear:40f049c3426d59f31bc5580f7635f84c7b87d596f2d0a78aacee91ea1e594f69"
}

req_linear_self_generated := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/linear",
	"uri": "/hooks/linear",
	"headers": {
		"linear-signature": "6acbceb2e1629d95ec1c080a5e0941a832b025b24c65b7405b6950a179ba9565",
		"linear-delivery": "d1",
	},
	"body": "{\"action\":\"create\",\"type\":\"Issue\",\"data\":{\"id\":\"x\"},\"webhookTimestamp\":1700000000000}",
	"remote_ip": "192.0.2.10",
}
