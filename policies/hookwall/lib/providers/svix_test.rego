package hookwall.lib.providers.svix_test

import data.hookwall.lib.providers.svix

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
	"headers": {"svix-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
	"body": "{\"type\":\"user.created\",\"data\":{}}",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	svix.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not svix.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	svix.verify_with("s", {"tolerance": "30s"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	svix.allow("s") with input as signed with hookwall.webhook.verify as valid
	svix.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	svix.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not svix.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not svix.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	svix.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	svix.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	svix.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"svix-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
	"body": "{\"type\":\"user.created\",\"data\":{}}",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not svix.allow("s") with input as put with hookwall.webhook.verify as valid
	svix.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	svix.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	svix.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

test_dedupe_key if {
	svix.dedupe_key == "svix:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W" with input as signed
	svix.dedupe == {"key": "svix:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "ttl": "72h"} with input as signed
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
	not svix.dedupe_key with input as unkeyed
	not svix.dedupe with input as unkeyed
}

standard_sender := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"webhook-id": "msg_std"},
	"body": "{}",
	"remote_ip": "198.51.100.7",
}}

# Standard header names work for Svix too.
test_dedupe_key_from_webhook_id if {
	svix.dedupe_key == "svix:msg_std" with input as standard_sender
}

test_event if {
	svix.event == "user.created" with input as signed
}

# verified_as_svix_id is the builtin's answer for verify_with(…, {"prefix": "svix-"}): the id it
# checked is svix-id.
verified_as_svix_id(_, _, opts) := {"valid": true, "reason": "", "id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"} if opts.prefix == "svix-"

# The svix- prefix named explicitly, a captured delivery replayed with a fresh webhook-id: the
# key is the svix-id verify_with checked, not the fresh id dedupe_key would read.
test_dedupe_of_keys_the_verified_id if {
	replay := json.patch(signed, [{"op": "add", "path": "/request/headers/webhook-id", "value": "fresh-unsigned-1"}])
	sig := svix.verify_with("s", {"prefix": "svix-"}) with input as replay with hookwall.webhook.verify as verified_as_svix_id
	svix.dedupe_of(sig) == {"key": "svix:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "ttl": "72h"}
	svix.labels_of(sig) == {"event": "user.created", "delivery": "svix:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"} with input as replay
	svix.dedupe_key == "svix:fresh-unsigned-1" with input as replay
}

test_no_dedupe_of_without_a_verified_id if {
	not svix.dedupe_of({"valid": false, "reason": "signature mismatch", "id": "msg_1"})
	not svix.dedupe_of({"valid": true, "reason": ""})
}
