package hookwall.lib.providers.paddle_test

import data.hookwall.lib.providers.paddle

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "paddle"
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
	"headers": {},
	"body": "{\"event_id\":\"evt_01h8bzakzx3hm2fmen703n5q45\",\"event_type\":\"transaction.completed\",\"notification_id\":\"ntf_01h8bzam1z32agrxjwhjgqk8w6\"}",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	paddle.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not paddle.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	paddle.verify_with("s", {"tolerance": "30s"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	paddle.allow("s") with input as signed with hookwall.webhook.verify as valid
	paddle.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	paddle.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not paddle.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not paddle.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	paddle.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	paddle.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	paddle.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"event_id\":\"evt_01h8bzakzx3hm2fmen703n5q45\",\"event_type\":\"transaction.completed\",\"notification_id\":\"ntf_01h8bzam1z32agrxjwhjgqk8w6\"}",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not paddle.allow("s") with input as put with hookwall.webhook.verify as valid
	paddle.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	paddle.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	paddle.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

test_dedupe_key if {
	paddle.dedupe_key == "paddle:ntf_01h8bzam1z32agrxjwhjgqk8w6" with input as signed
	paddle.dedupe == {"key": "paddle:ntf_01h8bzam1z32agrxjwhjgqk8w6", "ttl": "72h"} with input as signed
}

unkeyed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"event_type\":\"transaction.completed\"}",
	"remote_ip": "198.51.100.7",
}}

# Without the id, the digest of the signed body keys the request: every verified delivery
# has a key, and no unsigned header chooses it.
test_dedupe_key_without_the_id_is_the_body_digest if {
	paddle.dedupe_key == "paddle:9c79119f0b59458154aa5396c776242db2ac5d26fd41d5d93290731f86d5e769" with input as unkeyed
}

test_event if {
	paddle.event == "transaction.completed" with input as signed
}
