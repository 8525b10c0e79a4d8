package hookwall.lib.providers.shopify_test

import data.hookwall.lib.providers.shopify

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "shopify"
	request == input.request
	opts == {"secret": ["old", "new"]}
}

# checked_with: verify_with's options are added, and win over the defaults. (The scheme signs
# no time, so the option shown is url, which it reads no more than any other: only the
# adding is checked.)
checked_with(_, _, opts) := {"valid": true, "reason": ""} if opts == {"secret": "s", "url": "https://hooks.example.com"}

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

test_verify_passes_scheme_request_and_secrets if {
	shopify.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not shopify.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	shopify.verify_with("s", {"url": "https://hooks.example.com"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	shopify.allow("s") with input as signed with hookwall.webhook.verify as valid
	shopify.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	shopify.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not shopify.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not shopify.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	shopify.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	shopify.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	shopify.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
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

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not shopify.allow("s") with input as put with hookwall.webhook.verify as valid
	shopify.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	shopify.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	shopify.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

# The key is a digest of what Shopify signs. X-Shopify-Event-Id is not signed,
# so a captured delivery replayed with a fresh one (or none) has the same key.
test_dedupe_key if {
	shopify.dedupe_key == "shopify:5ca2f5d25a24d2fa02aea8d8d1bdc421ebd0ff1a00b4b7a7e517eb198b0d2015" with input as signed
	shopify.dedupe == {"key": "shopify:5ca2f5d25a24d2fa02aea8d8d1bdc421ebd0ff1a00b4b7a7e517eb198b0d2015", "ttl": "48h"} with input as signed
	shopify.dedupe_key == "shopify:5ca2f5d25a24d2fa02aea8d8d1bdc421ebd0ff1a00b4b7a7e517eb198b0d2015" with input as json.patch(signed, [{"op": "replace", "path": "/request/headers/x-shopify-event-id", "value": "fresh"}])
	shopify.dedupe_key == "shopify:5ca2f5d25a24d2fa02aea8d8d1bdc421ebd0ff1a00b4b7a7e517eb198b0d2015" with input as json.patch(signed, [{"op": "remove", "path": "/request/headers/x-shopify-event-id"}])
}

unkeyed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"x-shopify-topic": "orders/create"},
	"body": "{}",
	"remote_ip": "198.51.100.7",
}}

# Other signed bytes are another delivery.
test_other_bytes_are_another_key if {
	shopify.dedupe_key == "shopify:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" with input as unkeyed
}

# The topic is not signed either: a delivery replayed under another topic is the same key.
test_the_topic_plays_no_part if {
	shopify.dedupe_key == "shopify:5ca2f5d25a24d2fa02aea8d8d1bdc421ebd0ff1a00b4b7a7e517eb198b0d2015" with input as json.patch(signed, [{"op": "replace", "path": "/request/headers/x-shopify-topic", "value": "orders/paid"}])
}

test_event if {
	shopify.event == "orders/create" with input as signed
}
