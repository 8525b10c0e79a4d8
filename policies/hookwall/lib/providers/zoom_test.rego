package hookwall.lib.providers.zoom_test

import data.hookwall.lib.providers.zoom

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "zoom"
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
	"body": "{\"event\":\"meeting.started\",\"event_ts\":1700000000000,\"payload\":{\"account_id\":\"abc\"}}",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	zoom.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not zoom.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	zoom.verify_with("s", {"tolerance": "30s"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	zoom.allow("s") with input as signed with hookwall.webhook.verify as valid
	zoom.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	zoom.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not zoom.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not zoom.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	zoom.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	zoom.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	zoom.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"event\":\"meeting.started\",\"event_ts\":1700000000000,\"payload\":{\"account_id\":\"abc\"}}",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not zoom.allow("s") with input as put with hookwall.webhook.verify as valid
	zoom.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	zoom.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	zoom.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

test_dedupe_key if {
	zoom.dedupe_key == "zoom:f664be7e7f77b4e7f84ee7f5d5c4bd9d93ff548b5cf885c2d3662bb0c6dace7a" with input as signed
	zoom.dedupe == {"key": "zoom:f664be7e7f77b4e7f84ee7f5d5c4bd9d93ff548b5cf885c2d3662bb0c6dace7a", "ttl": "24h"} with input as signed
}

other := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"event\":\"meeting.stbrted\",\"event_ts\":1700000000000,\"payload\":{\"account_id\":\"abc\"}}",
	"remote_ip": "198.51.100.7",
}}

# The key is the body's SHA-256: another body is another key.
test_dedupe_key_is_the_body_hash if {
	zoom.dedupe_key == "zoom:31eb628b18234ff433dbbe120ae6b890e2dd52b3fa078fe8eb46f2d11a041289" with input as other
}

test_event if {
	zoom.event == "meeting.started" with input as signed
}
