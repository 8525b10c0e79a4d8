# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.square and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "square" holds the provider's vector secret).
package routes.providers.vectors.square_test

import data.hookwall.lib.providers.square

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1700000000

# Vector square-sdk-test-notification (expect valid).
test_square_sdk_test_notification if {
	d := data.routes.providers.square with input as {"request": req_square_sdk_test_notification}
		with data.hookwall.config.public_url as "https://webhook.site"
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "square:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "square:ac3ac95b-f97d-458c-a6e6-18981597e05f", "ttl": "72h"}
	d.labels.delivery == "square:ac3ac95b-f97d-458c-a6e6-18981597e05f"
	d.labels.event == "webhooks.test_notification"
}

req_square_sdk_test_notification := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/679a4f3a-dcfa-49ee-bac5-9d0edad886b9",
	"uri": "/679a4f3a-dcfa-49ee-bac5-9d0edad886b9",
	"headers": {
		"x-square-hmacsha256-signature": "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=",
	},
	"body": "{\"merchant_id\":\"MLEFBHHSJGVHD\",\"type\":\"webhooks.test_notification\",\"event_id\":\"ac3ac95b-f97d-458c-a6e6-18981597e05f\",\"created_at\":\"2022-07-13T20:30:59.037339943Z\",\"data\":{\"type\":\"webhooks\",\"id\":\"bc368e64-01aa-407e-b46e-3231809b1129\"}}",
	"remote_ip": "192.0.2.10",
}

# Vector square-sdk-url-mismatch (expect invalid: notification URL differs).
test_square_sdk_url_mismatch if {
	d := data.routes.providers.square with input as {"request": req_square_sdk_url_mismatch}
		with data.hookwall.config.public_url as "https://webhook.site"
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_square_sdk_url_mismatch := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/79a4f3a-dcfa-49ee-bac5-9d0edad886b9",
	"uri": "/79a4f3a-dcfa-49ee-bac5-9d0edad886b9",
	"headers": {
		"x-square-hmacsha256-signature": "GF4YkrJgGBDZ9NIYbNXBnMzqb2HoL4RW/S6vkZ9/2N4=",
	},
	"body": "{\"merchant_id\":\"MLEFBHHSJGVHD\",\"type\":\"webhooks.test_notification\",\"event_id\":\"ac3ac95b-f97d-458c-a6e6-18981597e05f\",\"created_at\":\"2022-07-13T20:30:59.037339943Z\",\"data\":{\"type\":\"webhooks\",\"id\":\"bc368e64-01aa-407e-b46e-3231809b1129\"}}",
	"remote_ip": "192.0.2.10",
}

# Vector square-sdk-escaped-chars was signed with another key, named square_escaped here.
test_square_sdk_escaped_chars if {
	square.verified("square_escaped") with input as {"request": req_square_sdk_escaped_chars}
		with data.hookwall.config.public_url as "https://webhook.site"
}

# Vector square-sdk-wrong-key (expect invalid): the notification checked with another key.
test_square_sdk_wrong_key if {
	r := square.verify("square_wrong") with input as {"request": req_square_sdk_test_notification}
		with data.hookwall.config.public_url as "https://webhook.site"
	r == {"valid": false, "reason": "signature mismatch"}
}

req_square_sdk_escaped_chars := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/webhooks",
	"uri": "/webhooks",
	"headers": {
		"x-square-hmacsha256-signature": "Cxt7+aTi4rKgcA0bC4g9EHdVtLSDWdqccmL5MvihU4U=",
	},
	"body": "{\"data\":{\"type\":\"webhooks\",\"id\":\">id<\"}}",
	"remote_ip": "192.0.2.10",
}
