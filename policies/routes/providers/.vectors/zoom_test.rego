# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.zoom and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "zoom" holds the provider's vector secret).
package routes.providers.vectors.zoom_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1700000010

# Vector zoom-self-generated (expect valid).
test_zoom_self_generated if {
	d := data.routes.providers.zoom with input as {"request": req_zoom_self_generated}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "zoom:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "zoom:555f4fdc067b1ce0f8ffe6522aa6f2f5d456adb1917a0f856e4a8bf8499469c9", "ttl": "24h"}
	d.labels.delivery == "zoom:555f4fdc067b1ce0f8ffe6522aa6f2f5d456adb1917a0f856e4a8bf8499469c9"
	d.labels.event == "meeting.started"
}

req_zoom_self_generated := {
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
