package hookwall.lib.providers.standard_test

import data.hookwall.lib.providers.standard

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

# checked verifies only the call the library must make: scheme, the request as received, and
# the secret names with the provider's default options.
checked(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "standard"
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
	"headers": {"webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
	"body": "{\"type\":\"invoice.paid\",\"timestamp\":\"2022-11-03T20:26:10.344522Z\",\"data\":{}}",
	"remote_ip": "198.51.100.7",
}}

test_verify_passes_scheme_request_and_secrets if {
	standard.verified(["old", "new"]) with input as signed with hookwall.webhook.verify as checked
	not standard.allow(["old", "new"]) with input as signed with hookwall.webhook.verify as mismatch
}

test_verify_with_adds_options if {
	standard.verify_with("s", {"tolerance": "30s"}) == {"valid": true, "reason": ""} with input as signed with hookwall.webhook.verify as checked_with
}

test_allows_a_verified_request if {
	standard.allow("s") with input as signed with hookwall.webhook.verify as valid
	standard.verified("s") == true with input as signed with hookwall.webhook.verify as valid
	standard.reasons("s") == set() with input as signed with hookwall.webhook.verify as valid
	not standard.status("s") with input as signed with hookwall.webhook.verify as valid
}

test_refuses_a_bad_signature if {
	not standard.allow("s") with input as signed with hookwall.webhook.verify as mismatch
	standard.verified("s") == false with input as signed with hookwall.webhook.verify as mismatch
	standard.reasons("s") == {"signature: signature mismatch"} with input as signed with hookwall.webhook.verify as mismatch
	standard.status("s") == 401 with input as signed with hookwall.webhook.verify as mismatch
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"webhook-id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"},
	"body": "{\"type\":\"invoice.paid\",\"timestamp\":\"2022-11-03T20:26:10.344522Z\",\"data\":{}}",
	"remote_ip": "198.51.100.7",
}}

# A signed request replayed with a method the provider never uses is refused.
test_refuses_another_method if {
	not standard.allow("s") with input as put with hookwall.webhook.verify as valid
	standard.reasons("s") == {"method PUT is not accepted"} with input as put with hookwall.webhook.verify as valid
	standard.status("s") == 405 with input as put with hookwall.webhook.verify as valid
	standard.status("s") == 401 with input as put with hookwall.webhook.verify as mismatch
}

test_dedupe_key if {
	standard.dedupe_key == "standard:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W" with input as signed
	standard.dedupe == {"key": "standard:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "ttl": "72h"} with input as signed
}

unkeyed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{}",
	"remote_ip": "198.51.100.7",
}}

# Without a message id there is no key (and no error); verify fails such a request anyway.
test_no_dedupe_key_without_id if {
	not standard.dedupe_key with input as unkeyed
	not standard.dedupe with input as unkeyed
}

svix_sender := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"svix-id": "msg_svix"},
	"body": "{}",
	"remote_ip": "198.51.100.7",
}}

# A Svix sender names the id svix-id.
test_dedupe_key_from_svix_id if {
	standard.dedupe_key == "standard:msg_svix" with input as svix_sender
}

# verify reads the svix- headers while the webhook- ones are empty, so an empty webhook-id added
# to a captured Svix delivery leaves the signed svix-id as the key.
test_an_empty_webhook_id_does_not_replace_the_signed_svix_id if {
	standard.dedupe_key == "standard:msg_svix" with input as json.patch(svix_sender, [{"op": "add", "path": "/request/headers/webhook-id", "value": ""}])
}

test_event if {
	standard.event == "invoice.paid" with input as signed
}

# acme_verified is the builtin's answer for a delivery under a sender's own header prefix: valid,
# and the id the signature covers, read from acme-webhook-id.
acme_verified(scheme, _, opts) := {"valid": true, "reason": "", "id": "msg_acme_1"} if {
	scheme == "standard"
	opts == {"secret": "acme", "prefix": "acme-webhook-"}
}

acme_sender := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {
		"acme-webhook-id": "msg_acme_1",
		"acme-webhook-timestamp": "1700000000",
		"acme-webhook-signature": "v1,vRSHIuOISfhGIqJ8OtY5OF3nZl4Po7g9gSnJkOFyPPg=",
	},
	"body": "{\"type\":\"invoice.paid\",\"amount\":100}",
	"remote_ip": "198.51.100.7",
}}

# With a prefix of the sender's own, the key is the id verify_with verified, from the prefix's
# headers: the headers dedupe_key reads are not there, and it has none.
test_dedupe_of_a_custom_prefix if {
	sig := standard.verify_with("acme", {"prefix": "acme-webhook-"}) with input as acme_sender with hookwall.webhook.verify as acme_verified
	standard.dedupe_of(sig) == {"key": "standard:msg_acme_1", "ttl": "72h"}
	standard.dedupe_key_of(sig) == "standard:msg_acme_1"
	standard.labels_of(sig) == {"event": "invoice.paid", "delivery": "standard:msg_acme_1"} with input as acme_sender
	not standard.dedupe_key with input as acme_sender
}

# A captured delivery replayed with a fresh webhook-id beside the acme- headers: verify_with
# does not read it, and the key stays the signed id.
test_dedupe_of_ignores_an_unsigned_webhook_id if {
	replay := json.patch(acme_sender, [{"op": "add", "path": "/request/headers/webhook-id", "value": "fresh-unsigned-1"}])
	sig := standard.verify_with("acme", {"prefix": "acme-webhook-"}) with input as replay with hookwall.webhook.verify as acme_verified
	standard.dedupe_of(sig) == {"key": "standard:msg_acme_1", "ttl": "72h"}
}

# svix_prefix_verified: verify_with(…, {"prefix": "svix-"}) checked svix-id.
svix_prefix_verified(_, _, opts) := {"valid": true, "reason": "", "id": "msg_svix"} if opts.prefix == "svix-"

# The svix- prefix named explicitly, and a fresh webhook-id added: the header-read key would be
# the fresh id; the verified one is svix-id.
test_dedupe_of_the_svix_prefix_beside_a_fresh_webhook_id if {
	replay := json.patch(svix_sender, [{"op": "add", "path": "/request/headers/webhook-id", "value": "fresh-unsigned-1"}])
	sig := standard.verify_with("s", {"prefix": "svix-"}) with input as replay with hookwall.webhook.verify as svix_prefix_verified
	standard.dedupe_key_of(sig) == "standard:msg_svix"
}

# Only a valid result with an id keys a delivery: a refused one, or one without an id (another
# scheme's), has no key, and a route that allows on it has nothing to mark delivered.
test_no_dedupe_of_without_a_verified_id if {
	not standard.dedupe_of({"valid": false, "reason": "signature mismatch"})
	not standard.dedupe_of({"valid": false, "reason": "signature mismatch", "id": "msg_1"})
	not standard.dedupe_of({"valid": true, "reason": ""})
	not standard.dedupe_of({"valid": true, "reason": "", "id": ""})
	not standard.labels_of({"valid": false, "reason": "signature mismatch"}) with input as signed
}
