# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.paddle and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "paddle" holds the provider's vector secret).
package routes.providers.vectors.paddle_stale_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1698796806

# Vector paddle-sdk-too-late (expect invalid: now = ts + 6s > SDK's 5s MAX_VALID_TIME_DIFFERENCE).
test_paddle_sdk_too_late if {
	d := data.routes.providers.paddle with input as {"request": req_paddle_sdk_too_late}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: timestamp outside tolerance")
	not d.dedupe
	not d.labels
}

req_paddle_sdk_too_late := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/paddle",
	"uri": "/hooks/paddle",
	"headers": {
		"paddle-signature": "ts=1698796800;h1=a300428748dce5c70e4da19bffd60769591ea969c99dea3105d0ec9612cf43f9",
	},
	"body": "{\"data\": [\"1\", \"2\"]}",
	"remote_ip": "192.0.2.10",
}
