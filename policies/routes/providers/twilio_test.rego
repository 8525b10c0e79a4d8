package routes.providers.twilio_test

# valid_for checks the ready policy reads the secret named after the provider.
valid_for(scheme, _, opts) := {"valid": true, "reason": ""} if {
	scheme == "twilio"
	opts.secret == "twilio"
}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

missing(_, _, _) := {"valid": false, "reason": "missing header x-signature"}

signed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"i-twilio-idempotency-token": "ab12cd34-0000-4000-8000-000000000001"},
	"body": "CallSid=CA123&Digits=1234",
	"remote_ip": "198.51.100.7",
}}

test_forwards_a_verified_request if {
	d := data.routes.providers.twilio with input as signed with hookwall.webhook.verify as valid_for
	d.allow == true
	d.deny == set()
	not d.status
	d.dedupe == {"key": "twilio:bf7a00c55e20bdce466bae43fc9750d87d2f734feb7c8c2096cc1babce7ce8f0", "ttl": "24h"}
	d.rate_limit == {"key": "twilio:198.51.100.7", "limit": 600, "per": "1m"}
	d.labels == {"delivery": "twilio:bf7a00c55e20bdce466bae43fc9750d87d2f734feb7c8c2096cc1babce7ce8f0"}
}

test_denies_a_bad_signature_with_401 if {
	d := data.routes.providers.twilio with input as signed with hookwall.webhook.verify as mismatch
	d.allow == false
	d.deny == {"signature: signature mismatch"}
	d.status == 401
	not d.dedupe
	not d.labels
}

test_reason_names_the_failed_check if {
	d := data.routes.providers.twilio with input as signed with hookwall.webhook.verify as missing
	d.deny == {"signature: missing header x-signature"}
	d.status == 401
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {"i-twilio-idempotency-token": "ab12cd34-0000-4000-8000-000000000001"},
	"body": "CallSid=CA123&Digits=1234",
	"remote_ip": "198.51.100.7",
}}

test_denies_another_method_with_405 if {
	d := data.routes.providers.twilio with input as put with hookwall.webhook.verify as valid_for
	d.allow == false
	d.deny == {"method PUT is not accepted"}
	d.status == 405
}

proxied(_, _, opts) := {"valid": true, "reason": ""} if opts.url == "https://hooks.example.net"

direct(_, _, opts) := {"valid": true, "reason": ""} if opts.url == "https://hooks.example.com"

# The public URL comes from data.hookwall.config.public_url, else from the request.
test_public_url if {
	data.routes.providers.twilio.allow with input as signed with hookwall.webhook.verify as direct
	data.routes.providers.twilio.allow with input as signed with hookwall.webhook.verify as proxied
		with data.hookwall.config.public_url as "https://hooks.example.net"
	not data.routes.providers.twilio.allow with input as signed with hookwall.webhook.verify as direct
		with data.hookwall.config.public_url as "https://hooks.example.net"
}
