# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.shopify and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "shopify" holds the provider's vector secret).
package routes.providers.vectors.shopify_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1700000000

# Vector go-shopify-my-secret-message (expect valid).
test_go_shopify_my_secret_message if {
	d := data.routes.providers.shopify with input as {"request": req_go_shopify_my_secret_message}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "shopify:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "shopify:3ee7741e69e470e2cce4c19658a179a61dd9d73ed83b746347fc3a99774e0ce3", "ttl": "48h"}
	d.labels.delivery == "shopify:3ee7741e69e470e2cce4c19658a179a61dd9d73ed83b746347fc3a99774e0ce3"
}

req_go_shopify_my_secret_message := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/shopify",
	"uri": "/hooks/shopify",
	"headers": {
		"x-shopify-hmac-sha256": "hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI=",
	},
	"body": "\"my secret message\"",
	"remote_ip": "192.0.2.10",
}

# Vector go-shopify-empty-body (expect invalid: empty body).
test_go_shopify_empty_body if {
	d := data.routes.providers.shopify with input as {"request": req_go_shopify_empty_body}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_go_shopify_empty_body := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/shopify",
	"uri": "/hooks/shopify",
	"headers": {
		"x-shopify-hmac-sha256": "hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI=",
	},
	"body": "",
	"remote_ip": "192.0.2.10",
}

# Vector go-shopify-unquoted-body (expect invalid: body without JSON quotes (re-serialisation changes bytes)).
test_go_shopify_unquoted_body if {
	d := data.routes.providers.shopify with input as {"request": req_go_shopify_unquoted_body}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_go_shopify_unquoted_body := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/shopify",
	"uri": "/hooks/shopify",
	"headers": {
		"x-shopify-hmac-sha256": "hMTq0K2x7oyOjoBwGYeTj5oxfnaVYXzbanUG9aajpKI=",
	},
	"body": "my secret message",
	"remote_ip": "192.0.2.10",
}
