# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.svix and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "svix" holds the provider's vector secret).
package routes.providers.vectors.svix_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1614265330

# Vector svix-headers-sign-vector (expect valid).
test_svix_headers_sign_vector if {
	d := data.routes.providers.svix with input as {"request": req_svix_headers_sign_vector}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "svix:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "svix:msg_p5jXN8AQM9LWM0D4loKWxJek", "ttl": "72h"}
	d.labels.delivery == "svix:msg_p5jXN8AQM9LWM0D4loKWxJek"
}

req_svix_headers_sign_vector := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/svix",
	"uri": "/hooks/svix",
	"headers": {
		"svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"svix-timestamp": "1614265330",
		"svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	},
	"body": "{\"test\": 2432232314}",
	"remote_ip": "192.0.2.10",
}

# Vector svix-tampered-body (expect invalid: body changed).
test_svix_tampered_body if {
	d := data.routes.providers.svix with input as {"request": req_svix_tampered_body}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_svix_tampered_body := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/svix",
	"uri": "/hooks/svix",
	"headers": {
		"svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"svix-timestamp": "1614265330",
		"svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	},
	"body": "{\"test\": 2432232315}",
	"remote_ip": "192.0.2.10",
}
