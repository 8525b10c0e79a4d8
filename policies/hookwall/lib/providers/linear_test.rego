package hookwall.lib.providers.linear_test

import data.hookwall.lib.providers.linear

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "linear"
	request == input.request
	opts == {"secret": ["old", "new"], "tolerance": "1m"}
}

# checked_with: verify_with's options are added, and win over the defaults.
checked_with(_, _, opts) := {"valid": true, "reason": ""} if opts == {"secret": "s", "tolerance": "30s"}

signed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"linear-delivery": "234d1a4e-b617-4388-90fe-adc3633d6b72", "linear-event": "Issue"},
	"body": "{\"action\":\"create\",\"type\":\"Issue\",\"webhookTimestamp\":1700000000000}",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	linear.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not linear.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	linear.verify_with("s", {"tolerance": "30s"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	linear.allow("s") with input as signed with hookwall.webhook.verify as valid
	linear.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	linear.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not linear.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not linear.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	linear.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	linear.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	linear.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"linear-delivery": "234d1a4e-b617-4388-90fe-adc3633d6b72", "linear-event": "Issue"},
	"body": "{\"action\":\"create\",\"type\":\"Issue\",\"webhookTimestamp\":1700000000000}",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not linear.allow("s") with input as put with hookwall.webhook.verify as valid
	linear.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	linear.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	linear.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

# The key is a digest of what Linear signs. Linear-Delivery is not signed,
# so a captured delivery replayed with a fresh one (or none) has the same key.
test_dedupe_key if {
	linear.dedupe_key == "linear:710faa25c59548f1b4249b46710d34ca28a3fb0cbc171b7bb07f84c87f63c82f" with input as signed
	linear.dedupe == {"key": "linear:710faa25c59548f1b4249b46710d34ca28a3fb0cbc171b7bb07f84c87f63c82f", "ttl": "24h"} with input as signed
	linear.dedupe_key == "linear:710faa25c59548f1b4249b46710d34ca28a3fb0cbc171b7bb07f84c87f63c82f" with input as json.patch(signed, [{"op": "replace", "path": "/request/headers/linear-delivery", "value": "fresh"}])
	linear.dedupe_key == "linear:710faa25c59548f1b4249b46710d34ca28a3fb0cbc171b7bb07f84c87f63c82f" with input as json.patch(signed, [{"op": "remove", "path": "/request/headers/linear-delivery"}])
}

unkeyed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"linear-event": "Issue"},
	"body": "{}",
	"remote_ip": "198.51.100.7",
}}

# Other signed bytes are another delivery.
test_other_bytes_are_another_key if {
	linear.dedupe_key == "linear:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" with input as unkeyed
}

test_event if {
	linear.event == "Issue" with input as signed
}
