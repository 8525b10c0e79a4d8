package hookwall.lib.providers.pagerduty_test

import data.hookwall.lib.providers.pagerduty

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "pagerduty"
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
	"headers": {},
	"body": "{\"event\":{\"id\":\"5ac64822-4adc-4fda-ade0-410becf0de4f\",\"event_type\":\"incident.triggered\"}}",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	pagerduty.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not pagerduty.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	pagerduty.verify_with("s", {"url": "https://hooks.example.com"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	pagerduty.allow("s") with input as signed with hookwall.webhook.verify as valid
	pagerduty.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	pagerduty.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not pagerduty.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not pagerduty.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	pagerduty.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	pagerduty.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	pagerduty.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"event\":{\"id\":\"5ac64822-4adc-4fda-ade0-410becf0de4f\",\"event_type\":\"incident.triggered\"}}",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not pagerduty.allow("s") with input as put with hookwall.webhook.verify as valid
	pagerduty.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	pagerduty.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	pagerduty.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

test_dedupe_key if {
	pagerduty.dedupe_key == "pagerduty:5ac64822-4adc-4fda-ade0-410becf0de4f" with input as signed
	pagerduty.dedupe == {"key": "pagerduty:5ac64822-4adc-4fda-ade0-410becf0de4f", "ttl": "24h"} with input as signed
}

unkeyed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"event\":{}}",
	"remote_ip": "198.51.100.7",
}}

# Without the id, the digest of the signed body keys the request: every verified delivery
# has a key, and no unsigned header chooses it.
test_dedupe_key_without_the_id_is_the_body_digest if {
	pagerduty.dedupe_key == "pagerduty:1face795aa72da7c2953de2607cdaf314c0ec26d36ced15422c7a7582b85cb2a" with input as unkeyed
}

test_event if {
	pagerduty.event == "incident.triggered" with input as signed
}
