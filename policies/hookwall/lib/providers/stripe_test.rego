package hookwall.lib.providers.stripe_test

import data.hookwall.lib.providers.stripe

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "stripe"
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
	"body": "{\"id\":\"evt_1NG8Du2eZvKYlo2CUI79vXWy\",\"object\":\"event\",\"type\":\"invoice.paid\"}",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	stripe.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not stripe.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	stripe.verify_with("s", {"tolerance": "30s"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	stripe.allow("s") with input as signed with hookwall.webhook.verify as valid
	stripe.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	stripe.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not stripe.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not stripe.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	stripe.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	stripe.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	stripe.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"id\":\"evt_1NG8Du2eZvKYlo2CUI79vXWy\",\"object\":\"event\",\"type\":\"invoice.paid\"}",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not stripe.allow("s") with input as put with hookwall.webhook.verify as valid
	stripe.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	stripe.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	stripe.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

test_dedupe_key if {
	stripe.dedupe_key == "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy" with input as signed
	stripe.dedupe == {"key": "stripe:evt_1NG8Du2eZvKYlo2CUI79vXWy", "ttl": "72h"} with input as signed
}

unkeyed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "not json",
	"remote_ip": "198.51.100.7",
}}

unkeyed_number := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"id\":42}",
	"remote_ip": "198.51.100.7",
}}

# Without the id, the digest of the signed body keys the request: every verified delivery
# has a key, and no unsigned header chooses it.
test_dedupe_key_without_the_id_is_the_body_digest if {
	stripe.dedupe_key == "stripe:7ccfa1fbf3940e6f0c0375d87c0f9235a50514e14cb427bdfaf5077987b26ccf" with input as unkeyed
}

test_event if {
	stripe.event == "invoice.paid" with input as signed
}
