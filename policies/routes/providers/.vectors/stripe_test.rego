# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.stripe and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "stripe" holds the provider's vector secret).
package routes.providers.vectors.stripe_test

import data.hookwall.lib.providers.stripe

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1533204720

# Vector stripe-dotnet-event_test_signature (expect valid).
test_stripe_dotnet_event_test_signature if {
	d := data.routes.providers.stripe with input as {"request": req_stripe_dotnet_event_test_signature}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "stripe:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "stripe:evt_123", "ttl": "72h"}
	d.labels.delivery == "stripe:evt_123"
	d.labels.event == "customer.created"
}

req_stripe_dotnet_event_test_signature := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/stripe",
	"uri": "/hooks/stripe",
	"headers": {
		"stripe-signature": "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef",
	},
	"body": "{\n  \"id\": \"evt_123\",\n  \"object\": \"event\",\n  \"account\": \"acct_123\",\n  \"api_version\": \"2017-05-25\",\n  \"created\": 1533204620,\n  \"data\": {\n    \"object\": {\n      \"id\": \"cus_123\",\n      \"object\": \"customer\",\n      \"created\": 123456789,\n      \"email\": \"test@stripe.com\",\n      \"livemode\": false,\n      \"metadata\": {}\n    }\n  },\n  \"livemode\": false,\n  \"pending_webhooks\": 1,\n  \"request\": {\n    \"id\": \"req_123\",\n    \"idempotency_key\": \"idempotency-key-123\"\n  },\n  \"type\": \"customer.created\"\n}\n",
	"remote_ip": "192.0.2.10",
}

# Vector stripe-dotnet-tampered-body (expect invalid: body + 'this_changes_the_json' (RejectIncorrectSignature test)).
test_stripe_dotnet_tampered_body if {
	d := data.routes.providers.stripe with input as {"request": req_stripe_dotnet_tampered_body}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_stripe_dotnet_tampered_body := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/stripe",
	"uri": "/hooks/stripe",
	"headers": {
		"stripe-signature": "t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef",
	},
	"body": "{\n  \"id\": \"evt_123\",\n  \"object\": \"event\",\n  \"account\": \"acct_123\",\n  \"api_version\": \"2017-05-25\",\n  \"created\": 1533204620,\n  \"data\": {\n    \"object\": {\n      \"id\": \"cus_123\",\n      \"object\": \"customer\",\n      \"created\": 123456789,\n      \"email\": \"test@stripe.com\",\n      \"livemode\": false,\n      \"metadata\": {}\n    }\n  },\n  \"livemode\": false,\n  \"pending_webhooks\": 1,\n  \"request\": {\n    \"id\": \"req_123\",\n    \"idempotency_key\": \"idempotency-key-123\"\n  },\n  \"type\": \"customer.created\"\n}\nthis_changes_the_json",
	"remote_ip": "192.0.2.10",
}

# Vector stripe-v0-only-must-fail (expect invalid: only the v0 (test-mode, non-HMAC-secret) scheme present; verifiers must only accept v1).
test_stripe_v0_only_must_fail if {
	d := data.routes.providers.stripe with input as {"request": req_stripe_v0_only_must_fail}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch (no v1 signature)")
	not d.dedupe
	not d.labels
}

req_stripe_v0_only_must_fail := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/stripe",
	"uri": "/hooks/stripe",
	"headers": {
		"stripe-signature": "t=1533204620,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef",
	},
	"body": "{\n  \"id\": \"evt_123\",\n  \"object\": \"event\",\n  \"account\": \"acct_123\",\n  \"api_version\": \"2017-05-25\",\n  \"created\": 1533204620,\n  \"data\": {\n    \"object\": {\n      \"id\": \"cus_123\",\n      \"object\": \"customer\",\n      \"created\": 123456789,\n      \"email\": \"test@stripe.com\",\n      \"livemode\": false,\n      \"metadata\": {}\n    }\n  },\n  \"livemode\": false,\n  \"pending_webhooks\": 1,\n  \"request\": {\n    \"id\": \"req_123\",\n    \"idempotency_key\": \"idempotency-key-123\"\n  },\n  \"type\": \"customer.created\"\n}\n",
	"remote_ip": "192.0.2.10",
}

# Vector stripe-dotnet-event_test_signature is 100 s old at this clock: a 1 minute tolerance
# given through verify_with refuses it as stale.
test_stripe_narrower_tolerance if {
	r := stripe.verify_with("stripe", {"tolerance": "1m"}) with input as {"request": req_stripe_dotnet_event_test_signature}
	r.valid == false
	startswith(r.reason, "timestamp outside tolerance")
}
