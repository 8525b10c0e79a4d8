package hookwall.lib.providers.slack_test

import data.hookwall.lib.providers.slack

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "slack"
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
	"body": "{\"type\":\"event_callback\",\"event_id\":\"Ev08MFMKH6\",\"event\":{\"type\":\"app_mention\"}}",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	slack.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not slack.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	slack.verify_with("s", {"tolerance": "30s"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	slack.allow("s") with input as signed with hookwall.webhook.verify as valid
	slack.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	slack.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not slack.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not slack.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	slack.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	slack.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	slack.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"type\":\"event_callback\",\"event_id\":\"Ev08MFMKH6\",\"event\":{\"type\":\"app_mention\"}}",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not slack.allow("s") with input as put with hookwall.webhook.verify as valid
	slack.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	slack.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	slack.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

test_dedupe_key if {
	slack.dedupe_key == "slack:Ev08MFMKH6" with input as signed
	slack.dedupe == {"key": "slack:Ev08MFMKH6", "ttl": "1h"} with input as signed
}

unkeyed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"content-type": "application/x-www-form-urlencoded"},
	"body": "token=x&command=%2Fweather&text=94070",
	"remote_ip": "198.51.100.7",
}}

# A slash command carries no event_id: the key is the digest of its signed body, so one
# replayed within the tolerance is a duplicate.
test_dedupe_key_without_an_event_id_is_the_body_digest if {
	slack.dedupe_key == "slack:a054b48b6c646d30364ca159a1d73888c815402fe41bd01f219a67e881132674" with input as unkeyed
}

test_event if {
	slack.event == "app_mention" with input as signed
}
