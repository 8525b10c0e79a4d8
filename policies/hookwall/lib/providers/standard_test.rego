package hookwall.lib.providers.standard_test

import data.hookwall.lib.providers.standard

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "standard"
	request == input.request
	opts == {"secret": ["old", "new"]}
}

# checked_with: verify_with's options are added, and win over the defaults.
checked_with(_, _, opts) := {"valid": true, "reason": ""} if opts == {"secret": "s", "tolerance": "30s"}

signed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
	"body": "{\"type\":\"invoice.paid\",\"timestamp\":\"2022-11-03T20:26:10.344522Z\",\"data\":{}}",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	standard.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not standard.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	standard.verify_with("s", {"tolerance": "30s"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	standard.allow("s") with input as signed with hookwall.webhook.verify as valid
	standard.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	standard.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not standard.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not standard.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	standard.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	standard.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	standard.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
	"body": "{\"type\":\"invoice.paid\",\"timestamp\":\"2022-11-03T20:26:10.344522Z\",\"data\":{}}",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not standard.allow("s") with input as put with hookwall.webhook.verify as valid
	standard.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	standard.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	standard.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

test_dedupe_key if {
	standard.dedupe_key == "standard:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W" with input as signed
	standard.dedupe == {"key": "standard:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "ttl": "72h"} with input as signed
}

unkeyed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{}",
	"remote_ip": "198.51.100.7",
}}

# Without a message id there is no key (and no error); verify fails such a request anyway.
test_no_dedupe_key_without_id if {
	not standard.dedupe_key with input as unkeyed
	not standard.dedupe with input as unkeyed
}

svix_sender := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"svix-id": "msg_svix"},
	"body": "{}",
	"remote_ip": "198.51.100.7",
}}

# A Svix sender names the id svix-id.
test_dedupe_key_from_svix_id if {
	standard.dedupe_key == "standard:msg_svix" with input as svix_sender
}

# verify reads the svix- headers while the webhook- ones are empty, so an empty webhook-id added
# to a captured Svix delivery leaves the signed svix-id as the key.
test_an_empty_webhook_id_does_not_replace_the_signed_svix_id if {
	standard.dedupe_key == "standard:msg_svix" with input as json.patch(svix_sender, [{"op": "add", "path": "/request/headers/webhook-id", "value": ""}])
}

test_event if {
	standard.event == "invoice.paid" with input as signed
}
