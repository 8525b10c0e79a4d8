package hookwall.lib.providers.discord_test

import data.hookwall.lib.providers.discord

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "discord"
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
	"body": "{\"id\":\"1234567890123456789\",\"type\":2,\"data\":{\"name\":\"ping\"}}",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	discord.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not discord.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	discord.verify_with("s", {"tolerance": "30s"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	discord.allow("s") with input as signed with hookwall.webhook.verify as valid
	discord.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	discord.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not discord.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not discord.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	discord.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	discord.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	discord.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"id\":\"1234567890123456789\",\"type\":2,\"data\":{\"name\":\"ping\"}}",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not discord.allow("s") with input as put with hookwall.webhook.verify as valid
	discord.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	discord.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	discord.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

test_dedupe_key if {
	discord.dedupe_key == "discord:1234567890123456789" with input as signed
	discord.dedupe == {"key": "discord:1234567890123456789", "ttl": "1h"} with input as signed
}

unkeyed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"type\":1}",
	"remote_ip": "198.51.100.7",
}}

# Without the id, the digest of the signed body keys the request: every verified delivery
# has a key, and no unsigned header chooses it.
test_dedupe_key_without_the_id_is_the_body_digest if {
	discord.dedupe_key == "discord:e126f1dec85e7de6b6f24432180a115a86bdcbcbdbcc9a422a44fc913ad4cde8" with input as unkeyed
}

test_event if {
	discord.event == 2 with input as signed
}
