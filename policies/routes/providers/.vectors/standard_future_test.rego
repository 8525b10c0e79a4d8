# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.standard and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "standard" holds the provider's vector secret).
package routes.providers.vectors.standard_future_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1614265029

# Vector standard-webhooks-future-timestamp (expect invalid: timestamp 301s in the future).
test_standard_webhooks_future_timestamp if {
	d := data.routes.providers.standard with input as {"request": req_standard_webhooks_future_timestamp}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: timestamp outside tolerance")
	not d.dedupe
	not d.labels
}

req_standard_webhooks_future_timestamp := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/standard",
	"uri": "/hooks/standard",
	"headers": {
		"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"webhook-timestamp": "1614265330",
		"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	},
	"body": "{\"test\": 2432232314}",
	"remote_ip": "192.0.2.10",
}
