package routes.providers.shopify_test

# valid_for checks the ready policy reads the secret named after the provider.
valid_for(scheme, _, opts) := {"valid": true, "reason": ""} if {
	scheme == "shopify"
	opts.secret == "shopify"
}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

missing(_, _, _) := {"valid": false, "reason": "missing header x-signature"}

signed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "x-shopify-event-id": "98880550-7158-44d4-b7cd-2c97c8a091b5", "x-shopify-topic": "orders/create"},
	"body": "{\"id\":820982911946154508}",
	"remote_ip": "198.51.100.7",
}}

test_forwards_a_verified_request if {
	d := data.routes.providers.shopify with input as signed with hookwall.webhook.verify as valid_for
	d.allow == true
	d.deny == set()
	not d.status
	d.dedupe == {"key": "shopify:5ca2f5d25a24d2fa02aea8d8d1bdc421ebd0ff1a00b4b7a7e517eb198b0d2015", "ttl": "48h"}
	d.rate_limit == {"key": "shopify:198.51.100.7", "limit": 600, "per": "1m"}
	d.labels == {"event": "orders/create", "delivery": "shopify:5ca2f5d25a24d2fa02aea8d8d1bdc421ebd0ff1a00b4b7a7e517eb198b0d2015"}
}

test_denies_a_bad_signature_with_401 if {
	d := data.routes.providers.shopify with input as signed with hookwall.webhook.verify as mismatch
	d.allow == false
	d.deny == {"signature: signature mismatch"}
	d.status == 401
	not d.dedupe
	not d.labels
}

test_reason_names_the_failed_check if {
	d := data.routes.providers.shopify with input as signed with hookwall.webhook.verify as missing
	d.deny == {"signature: missing header x-signature"}
	d.status == 401
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"x-shopify-webhook-id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", "x-shopify-event-id": "98880550-7158-44d4-b7cd-2c97c8a091b5", "x-shopify-topic": "orders/create"},
	"body": "{\"id\":820982911946154508}",
	"remote_ip": "198.51.100.7",
}}

test_denies_another_method_with_405 if {
	d := data.routes.providers.shopify with input as put with hookwall.webhook.verify as valid_for
	d.allow == false
	d.deny == {"method PUT is not accepted"}
	d.status == 405
}
