package routes.providers.zoom_test

# valid_for checks the ready policy reads the secret named after the provider.
valid_for(scheme, _, opts) := {"valid": true, "reason": ""} if {
	scheme == "zoom"
	opts.secret == "zoom"
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
	"body": "{\"event\":\"meeting.started\",\"event_ts\":1700000000000,\"payload\":{\"account_id\":\"abc\"}}",
	"remote_ip": "198.51.100.7",
}}

test_forwards_a_verified_request if {
	d := data.routes.providers.zoom with input as signed with hookwall.webhook.verify as valid_for
	d.allow == true
	d.deny == set()
	not d.status
	d.dedupe == {"key": "zoom:f664be7e7f77b4e7f84ee7f5d5c4bd9d93ff548b5cf885c2d3662bb0c6dace7a", "ttl": "24h"}
	d.rate_limit == {"key": "zoom:198.51.100.7", "limit": 600, "per": "1m"}
	d.labels == {"event": "meeting.started", "delivery": "zoom:f664be7e7f77b4e7f84ee7f5d5c4bd9d93ff548b5cf885c2d3662bb0c6dace7a"}
}

test_denies_a_bad_signature_with_401 if {
	d := data.routes.providers.zoom with input as signed with hookwall.webhook.verify as mismatch
	d.allow == false
	d.deny == {"signature: signature mismatch"}
	d.status == 401
	not d.dedupe
	not d.labels
}

test_reason_names_the_failed_check if {
	d := data.routes.providers.zoom with input as signed with hookwall.webhook.verify as missing
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
	"body": "{\"event\":\"meeting.started\",\"event_ts\":1700000000000,\"payload\":{\"account_id\":\"abc\"}}",
	"remote_ip": "198.51.100.7",
}}

test_denies_another_method_with_405 if {
	d := data.routes.providers.zoom with input as put with hookwall.webhook.verify as valid_for
	d.allow == false
	d.deny == {"method PUT is not accepted"}
	d.status == 405
}
