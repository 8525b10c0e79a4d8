package routes.providers.square_test

# valid_for checks the ready policy reads the secret named after the provider.
valid_for(scheme, _, opts) := {"valid": true, "reason": ""} if {
	scheme == "square"
	opts.secret == "square"
}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

missing(_, _, _) := {"valid": false, "reason": "missing header x-signature"}

signed := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"merchant_id\":\"6SSW7HV8K2ST5\",\"type\":\"payment.updated\",\"event_id\":\"6a8f5f28-54a1-4eb0-a98a-3111513fd4fc\"}",
	"remote_ip": "198.51.100.7",
}}

test_forwards_a_verified_request if {
	d := data.routes.providers.square with input as signed with hookwall.webhook.verify as valid_for
	d.allow == true
	d.deny == set()
	not d.status
	d.dedupe == {"key": "square:6a8f5f28-54a1-4eb0-a98a-3111513fd4fc", "ttl": "72h"}
	d.rate_limit == {"key": "square:198.51.100.7", "limit": 600, "per": "1m"}
	d.labels == {"event": "payment.updated", "delivery": "square:6a8f5f28-54a1-4eb0-a98a-3111513fd4fc"}
}

test_denies_a_bad_signature_with_401 if {
	d := data.routes.providers.square with input as signed with hookwall.webhook.verify as mismatch
	d.allow == false
	d.deny == {"signature: signature mismatch"}
	d.status == 401
	not d.dedupe
	not d.labels
}

test_reason_names_the_failed_check if {
	d := data.routes.providers.square with input as signed with hookwall.webhook.verify as missing
	d.deny == {"signature: missing header x-signature"}
	d.status == 401
}

put := {"request": {
	"method": "PUT",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "{\"merchant_id\":\"6SSW7HV8K2ST5\",\"type\":\"payment.updated\",\"event_id\":\"6a8f5f28-54a1-4eb0-a98a-3111513fd4fc\"}",
	"remote_ip": "198.51.100.7",
}}

test_denies_another_method_with_405 if {
	d := data.routes.providers.square with input as put with hookwall.webhook.verify as valid_for
	d.allow == false
	d.deny == {"method PUT is not accepted"}
	d.status == 405
}

not_json := {"request": {
	"method": "POST",
	"scheme": "https",
	"host": "hooks.example.com",
	"path": "/hooks/x",
	"uri": "/hooks/x",
	"headers": {},
	"body": "not json",
	"remote_ip": "198.51.100.7",
}}

# A verified body that is not JSON is forwarded, keyed on its digest, never an evaluation error.
test_non_json_body_is_keyed_on_its_digest if {
	d := data.routes.providers.square with input as not_json with hookwall.webhook.verify as valid_for
	d.allow == true
	d.dedupe == {"key": "square:7ccfa1fbf3940e6f0c0375d87c0f9235a50514e14cb427bdfaf5077987b26ccf", "ttl": "72h"}
}

proxied(_, _, opts) := {"valid": true, "reason": ""} if opts.url == "https://hooks.example.net"

direct(_, _, opts) := {"valid": true, "reason": ""} if opts.url == "https://hooks.example.com"

# The public URL comes from data.hookwall.config.public_url, else from the request.
test_public_url if {
	data.routes.providers.square.allow with input as signed with hookwall.webhook.verify as direct
	data.routes.providers.square.allow with input as signed with hookwall.webhook.verify as proxied
		with data.hookwall.config.public_url as "https://hooks.example.net"
	not data.routes.providers.square.allow with input as signed with hookwall.webhook.verify as direct
		with data.hookwall.config.public_url as "https://hooks.example.net"
}
