package routes.providers.linear_test

# valid_for checks the ready policy reads the secret named after the provider.
valid_for(scheme, _, opts) := {"valid": true, "reason": ""} if {
	scheme == "linear"
	opts.secret == "linear"
}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

missing(_, _, _) := {"valid": false, "reason": "missing header x-signature"}

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

test_forwards_a_verified_request if {
	d := data.routes.providers.linear with input as signed with hookwall.webhook.verify as valid_for
	d.allow == true
	d.deny == set()
	not d.status
	d.dedupe == {"key": "linear:710faa25c59548f1b4249b46710d34ca28a3fb0cbc171b7bb07f84c87f63c82f", "ttl": "24h"}
	d.rate_limit == {"key": "linear:198.51.100.7", "limit": 600, "per": "1m"}
	d.labels == {"event": "Issue", "delivery": "linear:710faa25c59548f1b4249b46710d34ca28a3fb0cbc171b7bb07f84c87f63c82f"}
}

test_denies_a_bad_signature_with_401 if {
	d := data.routes.providers.linear with input as signed with hookwall.webhook.verify as mismatch
	d.allow == false
	d.deny == {"signature: signature mismatch"}
	d.status == 401
	not d.dedupe
	not d.labels
}

test_reason_names_the_failed_check if {
	d := data.routes.providers.linear with input as signed with hookwall.webhook.verify as missing
	d.deny == {"signature: missing header x-signature"}
	d.status == 401
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

test_denies_another_method_with_405 if {
	d := data.routes.providers.linear with input as put with hookwall.webhook.verify as valid_for
	d.allow == false
	d.deny == {"method PUT is not accepted"}
	d.status == 405
}

one_minute(_, _, opts) := {"valid": true, "reason": ""} if opts.tolerance == "1m"

# Linear's SDK accepts a webhookTimestamp at most a minute old; so does the ready policy.
test_tolerance_is_one_minute if {
	data.routes.providers.linear.allow with input as signed with hookwall.webhook.verify as one_minute
}
