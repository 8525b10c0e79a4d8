# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.paddle and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "paddle" holds the provider's vector secret).
package routes.providers.vectors.paddle_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1698796800

# Vector paddle-sdk-valid (expect valid).
test_paddle_sdk_valid if {
	d := data.routes.providers.paddle with input as {"request": req_paddle_sdk_valid}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "paddle:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "paddle:5bb574418aa06ef7a5184b0fe2989b4fee1c23bb8d96d4527678e8f52387ac0e", "ttl": "72h"}
	d.labels.delivery == "paddle:5bb574418aa06ef7a5184b0fe2989b4fee1c23bb8d96d4527678e8f52387ac0e"
}

req_paddle_sdk_valid := {
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

# Vector paddle-sdk-multi-h1 (expect valid).
test_paddle_sdk_multi_h1 if {
	d := data.routes.providers.paddle with input as {"request": req_paddle_sdk_multi_h1}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "paddle:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "paddle:36e7cbecd5e88c7e07e112c60bd544ac9f445ea72f76a4d9db8418c079b2736c", "ttl": "72h"}
	d.labels.delivery == "paddle:36e7cbecd5e88c7e07e112c60bd544ac9f445ea72f76a4d9db8418c079b2736c"
}

req_paddle_sdk_multi_h1 := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/paddle",
	"uri": "/hooks/paddle",
	"headers": {
		"paddle-signature": "ts=1698796800;h1=28981e941fae76e53db32f3d2a83cb69db41476595e84e1970a1b5d98f62b261;h1=28981e941fae76e53db32f3d2a83cb69db41476595e84e1970a1b5d98f62b261;h2=RANDOM_HASH",
	},
	"body": "{\"data\": \"value\"}",
	"remote_ip": "192.0.2.10",
}

# Vector paddle-sdk-extra-spaces (expect invalid: re-formatted JSON body).
test_paddle_sdk_extra_spaces if {
	d := data.routes.providers.paddle with input as {"request": req_paddle_sdk_extra_spaces}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_paddle_sdk_extra_spaces := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/paddle",
	"uri": "/hooks/paddle",
	"headers": {
		"paddle-signature": "ts=1698796800;h1=a300428748dce5c70e4da19bffd60769591ea969c99dea3105d0ec9612cf43f9",
	},
	"body": "{ \"data\": [ \"1\", \"2\" ]}",
	"remote_ip": "192.0.2.10",
}
