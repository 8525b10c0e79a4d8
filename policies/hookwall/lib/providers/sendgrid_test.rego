package hookwall.lib.providers.sendgrid_test

import data.hookwall.lib.providers.sendgrid

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "sendgrid"
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
	"body": "[{\"email\":\"a@example.com\",\"event\":\"delivered\",\"sg_event_id\":\"ZGVsaXZlcmVk\"}]\r\n",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	sendgrid.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not sendgrid.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	sendgrid.verify_with("s", {"tolerance": "30s"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	sendgrid.allow("s") with input as signed with hookwall.webhook.verify as valid
	sendgrid.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	sendgrid.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not sendgrid.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not sendgrid.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	sendgrid.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	sendgrid.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	sendgrid.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "[{\"email\":\"a@example.com\",\"event\":\"delivered\",\"sg_event_id\":\"ZGVsaXZlcmVk\"}]\r\n",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not sendgrid.allow("s") with input as put with hookwall.webhook.verify as valid
	sendgrid.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	sendgrid.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	sendgrid.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

test_dedupe_key if {
	sendgrid.dedupe_key == "sendgrid:99c7b285511e2c9a4bbdaa02ba2328afeeb11bc68a557d8e28d1e61e8210109e" with input as signed
	sendgrid.dedupe == {"key": "sendgrid:99c7b285511e2c9a4bbdaa02ba2328afeeb11bc68a557d8e28d1e61e8210109e", "ttl": "48h"} with input as signed
}

other := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "[{\"embil\":\"a@example.com\",\"event\":\"delivered\",\"sg_event_id\":\"ZGVsaXZlcmVk\"}]\r\n",
	"remote_ip": "198.51.100.7",
}}

# The key is the body's SHA-256: another body is another key.
test_dedupe_key_is_the_body_hash if {
	sendgrid.dedupe_key == "sendgrid:1111bdd6dca62afe194e3c2f398d130968c89f4a04c4d0261a7fd1f4dad68c1a" with input as other
}
