package hookwall.lib.providers.square_test

import data.hookwall.lib.providers.square

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "square"
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
	"headers": {},
	"body": "{\"merchant_id\":\"6SSW7HV8K2ST5\",\"type\":\"payment.updated\",\"event_id\":\"6a8f5f28-54a1-4eb0-a98a-3111513fd4fc\"}",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	square.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not square.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	square.verify_with("s", {"url": "https://in.example.com"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	square.allow("s") with input as signed with hookwall.webhook.verify as valid
	square.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	square.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not square.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not square.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	square.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	square.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	square.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"merchant_id\":\"6SSW7HV8K2ST5\",\"type\":\"payment.updated\",\"event_id\":\"6a8f5f28-54a1-4eb0-a98a-3111513fd4fc\"}",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not square.allow("s") with input as put with hookwall.webhook.verify as valid
	square.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	square.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	square.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

test_dedupe_key if {
	square.dedupe_key == "square:6a8f5f28-54a1-4eb0-a98a-3111513fd4fc" with input as signed
	square.dedupe == {"key": "square:6a8f5f28-54a1-4eb0-a98a-3111513fd4fc", "ttl": "72h"} with input as signed
}

unkeyed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"type\":\"payment.updated\"}",
	"remote_ip": "198.51.100.7",
}}

# Without the id, the digest of the signed body keys the request: every verified delivery
# has a key, and no unsigned header chooses it.
test_dedupe_key_without_the_id_is_the_body_digest if {
	square.dedupe_key == "square:967d51c27482d973e5dd06894378e3af1ecbbf53a0ebf9eae2368cfab4432ee7" with input as unkeyed
}

test_event if {
	square.event == "payment.updated" with input as signed
}

checked_url(_, _, opts) := {"valid": true, "reason": ""} if opts.url == "https://hooks.example.com"

checked_public_url(_, _, opts) := {"valid": true, "reason": ""} if opts.url == "https://public.example.com"

# The signed URL's base is the request's own scheme and Host unless policy data names the
# public one (TLS termination, a proxy).
test_url_from_request_or_data if {
	square.verified("s") with input as signed with hookwall.webhook.verify as checked_url
	square.verified("s") with input as signed with hookwall.webhook.verify as checked_public_url
		with data.hookwall.config.public_url as "https://public.example.com"
	not square.verified("s") with input as signed with hookwall.webhook.verify as checked_url
		with data.hookwall.config.public_url as "https://public.example.com"
}
