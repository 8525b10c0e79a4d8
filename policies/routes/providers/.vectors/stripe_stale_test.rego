# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.stripe and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "stripe" holds the provider's vector secret).
package routes.providers.vectors.stripe_stale_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1533205020

# Vector stripe-dotnet-outdated-timestamp (expect invalid: now = t + 400 > 300s tolerance (RejectOutdatedTimestamp test)).
test_stripe_dotnet_outdated_timestamp if {
	d := data.routes.providers.stripe with input as {"request": req_stripe_dotnet_outdated_timestamp}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: timestamp outside tolerance")
	not d.dedupe
	not d.labels
}

req_stripe_dotnet_outdated_timestamp := {
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
