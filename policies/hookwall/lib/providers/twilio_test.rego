package hookwall.lib.providers.twilio_test

import data.hookwall.lib.providers.twilio

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "twilio"
	request == input.request
	opts == {"secret": ["old", "new"], "url": "https://hooks.example.com"}
}

# checked_with: verify_with's options are added, and win over the defaults.
checked_with(_, _, opts) := {"valid": true, "reason": ""} if opts == {"secret": "s", "url": "https://in.example.com"}

signed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"i-twilio-idempotency-token": "ab12cd34-0000-4000-8000-000000000001"},
	"body": "CallSid=CA123&Digits=1234",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	twilio.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not twilio.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	twilio.verify_with("s", {"url": "https://in.example.com"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	twilio.allow("s") with input as signed with hookwall.webhook.verify as valid
	twilio.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	twilio.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not twilio.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not twilio.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	twilio.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	twilio.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	twilio.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"i-twilio-idempotency-token": "ab12cd34-0000-4000-8000-000000000001"},
	"body": "CallSid=CA123&Digits=1234",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not twilio.allow("s") with input as put with hookwall.webhook.verify as valid
	twilio.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	twilio.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	twilio.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

get := {"request": {
	"method": "GET",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"i-twilio-idempotency-token": "ab12cd34-0000-4000-8000-000000000001"},
	"body": "",
	"remote_ip": "198.51.100.7",
}}

# Twilio can be configured to call webhooks with GET: the signature then covers the URL only.
test_accepts_get if {
	twilio.allow("s") with input as get with hookwall.webhook.verify as valid
}

# The key is a digest of what Twilio signs: the SHA-256 of the URI and each distinct decoded
# pair's name and value, in order, with nothing between (here of
# "/hooks/xCallSidCA123Digits1234", computed apart). I-Twilio-Idempotency-Token is not signed, so a captured delivery replayed
# with a fresh one (or none) has the same key.
test_dedupe_key if {
	twilio.dedupe_key == "twilio:bf7a00c55e20bdce466bae43fc9750d87d2f734feb7c8c2096cc1babce7ce8f0" with input as signed
	twilio.dedupe == {"key": "twilio:bf7a00c55e20bdce466bae43fc9750d87d2f734feb7c8c2096cc1babce7ce8f0", "ttl": "24h"} with input as signed
	twilio.dedupe_key == "twilio:bf7a00c55e20bdce466bae43fc9750d87d2f734feb7c8c2096cc1babce7ce8f0" with input as json.patch(signed, [{"op": "replace", "path": "/request/headers/i-twilio-idempotency-token", "value": "fresh"}])
	twilio.dedupe_key == "twilio:bf7a00c55e20bdce466bae43fc9750d87d2f734feb7c8c2096cc1babce7ce8f0" with input as json.patch(signed, [{"op": "remove", "path": "/request/headers/i-twilio-idempotency-token"}])
}

# A form body reshaped without changing what the signature covers (pairs reordered or
# repeated, empty items, other percent-encodings of the same bytes, "+" for a space, bytes
# moved across a pair's "=") is the same delivery: the same key.
test_reshaped_form_is_the_same_key if {
	every body in [
		"Digits=1234&CallSid=CA123",
		"CallSid=CA123&Digits=1234&",
		"&CallSid=CA123&&Digits=1234",
		"CallSid=CA123&Digits=1234&CallSid=CA123",
		"CallSid=%43A123&Digits=%31234",
		"%43allSid=CA123&Digits=1234",
		"CallSid=CA123&Digits1=234",
		"CallSid=CA123&Digits1234",
		"CallSidCA=123&Digits=1234",
	] {
		twilio.dedupe_key == "twilio:bf7a00c55e20bdce466bae43fc9750d87d2f734feb7c8c2096cc1babce7ce8f0" with input as json.patch(signed, [{"op": "replace", "path": "/request/body", "value": body}])
	}
	plus := twilio.dedupe_key with input as json.patch(signed, [{"op": "replace", "path": "/request/body", "value": "Body=a+b"}])
	encoded := twilio.dedupe_key with input as json.patch(signed, [{"op": "replace", "path": "/request/body", "value": "Body=a%20b"}])
	other := twilio.dedupe_key with input as json.patch(signed, [{"op": "replace", "path": "/request/body", "value": "Body=a+c"}])
	plus == encoded
	plus != other
}

# A body the URI binds with bodySHA256 is keyed on its bytes (and the URI): the hash fixes
# them, and they are not form pairs.
test_body_bound_by_its_hash_is_keyed_on_its_bytes if {
	bound := json.patch(signed, [
		{"op": "replace", "path": "/request/uri", "value": "/hooks/x?bodySHA256=00"},
		{"op": "replace", "path": "/request/body", "value": "{\"a\":1}"},
	])
	twilio.dedupe_key == concat("", ["twilio:", crypto.sha256(concat("\n", ["/hooks/x?bodySHA256=00", "{\"a\":1}"]))]) with input as bound

	# A path that merely contains the name is not the query parameter.
	twilio.dedupe_key != concat("", ["twilio:", crypto.sha256(concat("\n", ["/hooks/bodySHA256=00", "CallSid=CA123&Digits=1234"]))]) with input as json.patch(signed, [{"op": "replace", "path": "/request/uri", "value": "/hooks/bodySHA256=00"}])
}

unkeyed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "CallSid=CA123",
	"remote_ip": "198.51.100.7",
}}

# Other signed bytes are another delivery: the URI and the body are keyed.
test_other_bytes_are_another_key if {
	twilio.dedupe_key == "twilio:4771c5bae9174b0b5a674556187a0b2714535f647f376f7c9f92b48ce1a6e56c" with input as json.patch(signed, [{"op": "replace", "path": "/request/uri", "value": "/hooks/y?a=1"}])
	twilio.dedupe_key == "twilio:a6695c89cb11c58291c3a3002726a2761b3ee81a1af79dd1a55ba741ca0e8dbc" with input as unkeyed
}

checked_url(_, _, opts) := {"valid": true, "reason": ""} if opts.url == "https://hooks.example.com"

checked_public_url(_, _, opts) := {"valid": true, "reason": ""} if opts.url == "https://public.example.com"

# The signed URL's base is the request's own scheme and Host unless policy data names the
# public one (TLS termination, a proxy).
test_url_from_request_or_data if {
	twilio.verified("s") with input as signed with hookwall.webhook.verify as checked_url
	twilio.verified("s") with input as signed with hookwall.webhook.verify as checked_public_url
		with data.hookwall.config.public_url as "https://public.example.com"
	not twilio.verified("s") with input as signed with hookwall.webhook.verify as checked_url
		with data.hookwall.config.public_url as "https://public.example.com"
}
