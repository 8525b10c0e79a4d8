package routes.providers.sendgrid_test

# valid_for checks the ready policy reads the secret named after the provider.
valid_for(scheme, _, opts) := {"valid": true, "reason": ""} if {
	scheme == "sendgrid"
	opts.secret == "sendgrid"
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
	"body": "[{\"email\":\"a@example.com\",\"event\":\"delivered\",\"sg_event_id\":\"ZGVsaXZlcmVk\"}]\r\n",
	"remote_ip": "198.51.100.7",
}}

test_forwards_a_verified_request if {
	d := data.routes.providers.sendgrid with input as signed with hookwall.webhook.verify as valid_for
	d.allow == true
	d.deny == set()
	not d.status
	d.dedupe == {"key": "sendgrid:99c7b285511e2c9a4bbdaa02ba2328afeeb11bc68a557d8e28d1e61e8210109e", "ttl": "48h"}
	d.rate_limit == {"key": "sendgrid:198.51.100.7", "limit": 600, "per": "1m"}
	d.labels == {"delivery": "sendgrid:99c7b285511e2c9a4bbdaa02ba2328afeeb11bc68a557d8e28d1e61e8210109e"}
}

test_denies_a_bad_signature_with_401 if {
	d := data.routes.providers.sendgrid with input as signed with hookwall.webhook.verify as mismatch
	d.allow == false
	d.deny == {"signature: signature mismatch"}
	d.status == 401
	not d.dedupe
	not d.labels
}

test_reason_names_the_failed_check if {
	d := data.routes.providers.sendgrid with input as signed with hookwall.webhook.verify as missing
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
	"body": "[{\"email\":\"a@example.com\",\"event\":\"delivered\",\"sg_event_id\":\"ZGVsaXZlcmVk\"}]\r\n",
	"remote_ip": "198.51.100.7",
}}

test_denies_another_method_with_405 if {
	d := data.routes.providers.sendgrid with input as put with hookwall.webhook.verify as valid_for
	d.allow == false
	d.deny == {"method PUT is not accepted"}
	d.status == 405
}
