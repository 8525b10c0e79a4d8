# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.zoom and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "zoom" holds the provider's vector secret).
package routes.providers.vectors.zoom_stale_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1700000301

# Vector zoom-self-generated-stale (expect invalid: now = ts + 301).
test_zoom_self_generated_stale if {
	d := data.routes.providers.zoom with input as {"request": req_zoom_self_generated_stale}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: timestamp outside tolerance")
	not d.dedupe
	not d.labels
}

req_zoom_self_generated_stale := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/zoom",
	"uri": "/hooks/zoom",
	"headers": {
		"x-zm-request-timestamp": "1700000000",
		"x-zm-signature": "v0=b88cb24b12d2d757f02236d96c8547c3cfe1127a76781b6be1747aec16fba97f",
	},
	"body": "{\"event\":\"meeting.started\",\"payload\":{\"account_id\":\"abc\",\"object\":{\"id\":\"123\"}},\"event_ts\":1700000000000}",
	"remote_ip": "192.0.2.10",
}
