# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.standard and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "standard" holds the provider's vector secret).
package routes.providers.vectors.standard_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1614265330

# Vector standard-webhooks-sign-vector (expect valid).
test_standard_webhooks_sign_vector if {
	d := data.routes.providers.standard with input as {"request": req_standard_webhooks_sign_vector}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "standard:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "standard:msg_p5jXN8AQM9LWM0D4loKWxJek", "ttl": "72h"}
	d.labels.delivery == "standard:msg_p5jXN8AQM9LWM0D4loKWxJek"
}

req_standard_webhooks_sign_vector := {
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

# Vector standard-webhooks-multi-sig-rotation (expect valid: space-delimited list: unknown v1a + wrong v1 + correct v1 (key rotation)).
test_standard_webhooks_multi_sig_rotation if {
	d := data.routes.providers.standard with input as {"request": req_standard_webhooks_multi_sig_rotation}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "standard:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "standard:msg_p5jXN8AQM9LWM0D4loKWxJek", "ttl": "72h"}
	d.labels.delivery == "standard:msg_p5jXN8AQM9LWM0D4loKWxJek"
}

req_standard_webhooks_multi_sig_rotation := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/standard",
	"uri": "/hooks/standard",
	"headers": {
		"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"webhook-timestamp": "1614265330",
		"webhook-signature": "v1a,AAAA v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	},
	"body": "{\"test\": 2432232314}",
	"remote_ip": "192.0.2.10",
}

# Vector standard-webhooks-tampered-sig (expect invalid: last base64 chars changed (python test_webhooks.py line ~93)).
test_standard_webhooks_tampered_sig if {
	d := data.routes.providers.standard with input as {"request": req_standard_webhooks_tampered_sig}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_standard_webhooks_tampered_sig := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/standard",
	"uri": "/hooks/standard",
	"headers": {
		"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"webhook-timestamp": "1614265330",
		"webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA=",
	},
	"body": "{\"test\": 2432232314}",
	"remote_ip": "192.0.2.10",
}

# Vector standard-webhooks-v2-prefix (expect invalid: right bytes but unknown version prefix v2 (java/kotlin tests)).
test_standard_webhooks_v2_prefix if {
	d := data.routes.providers.standard with input as {"request": req_standard_webhooks_v2_prefix}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch (no v1 signature)")
	not d.dedupe
	not d.labels
}

req_standard_webhooks_v2_prefix := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/standard",
	"uri": "/hooks/standard",
	"headers": {
		"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
		"webhook-timestamp": "1614265330",
		"webhook-signature": "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
	},
	"body": "{\"test\": 2432232314}",
	"remote_ip": "192.0.2.10",
}
