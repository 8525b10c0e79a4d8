package hookwall.lib.providers.github_test

import data.hookwall.lib.providers.github

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "github"
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
	"headers": {"x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "x-github-event": "push"},
	"body": "{\"zen\":\"Keep it logically awesome.\"}",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	github.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not github.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	github.verify_with("s", {"url": "https://hooks.example.com"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	github.allow("s") with input as signed with hookwall.webhook.verify as valid
	github.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	github.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not github.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not github.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	github.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	github.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	github.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"x-github-delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958", "x-github-event": "push"},
	"body": "{\"zen\":\"Keep it logically awesome.\"}",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not github.allow("s") with input as put with hookwall.webhook.verify as valid
	github.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	github.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	github.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

# The key is a digest of what GitHub signs. X-GitHub-Delivery is not signed,
# so a captured delivery replayed with a fresh one (or none) has the same key.
test_dedupe_key if {
	github.dedupe_key == "github:0252d04b81792d637d82235c2e3f2f5a1aef4939830565eee2aec25d37681212" with input as signed
	github.dedupe == {"key": "github:0252d04b81792d637d82235c2e3f2f5a1aef4939830565eee2aec25d37681212", "ttl": "24h"} with input as signed
	github.dedupe_key == "github:0252d04b81792d637d82235c2e3f2f5a1aef4939830565eee2aec25d37681212" with input as json.patch(signed, [{"op": "replace", "path": "/request/headers/x-github-delivery", "value": "fresh"}])
	github.dedupe_key == "github:0252d04b81792d637d82235c2e3f2f5a1aef4939830565eee2aec25d37681212" with input as json.patch(signed, [{"op": "remove", "path": "/request/headers/x-github-delivery"}])
}

unkeyed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"x-github-event": "push"},
	"body": "{}",
	"remote_ip": "198.51.100.7",
}}

# Other signed bytes are another delivery.
test_other_bytes_are_another_key if {
	github.dedupe_key == "github:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a" with input as unkeyed
}

test_event if {
	github.event == "push" with input as signed
}
