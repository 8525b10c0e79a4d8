# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.linear and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "linear" holds the provider's vector secret).
package routes.providers.vectors.linear_stale_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1700000061

# Vector linear-self-generated-stale (expect invalid: webhookTimestamp 61s old).
test_linear_self_generated_stale if {
	d := data.routes.providers.linear with input as {"request": req_linear_self_generated_stale}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: timestamp outside tolerance")
	not d.dedupe
	not d.labels
}

req_linear_self_generated_stale := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/linear",
	"uri": "/hooks/linear",
	"headers": {
		"linear-signature": "6acbceb2e1629d95ec1c080a5e0941a832b025b24c65b7405b6950a179ba9565",
	},
	"body": "{\"action\":\"create\",\"type\":\"Issue\",\"data\":{\"id\":\"x\"},\"webhookTimestamp\":1700000000000}",
	"remote_ip": "192.0.2.10",
}
