package routes.providers.pagerduty_test

# valid_for checks the ready policy reads the secret named after the provider.
valid_for(scheme, _, opts) := {"valid": true, "reason": ""} if {
	scheme == "pagerduty"
	opts.secret == "pagerduty"
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
	"body": "{\"event\":{\"id\":\"5ac64822-4adc-4fda-ade0-410becf0de4f\",\"event_type\":\"incident.triggered\"}}",
	"remote_ip": "198.51.100.7",
}}

test_forwards_a_verified_request if {
	d := data.routes.providers.pagerduty with input as signed with hookwall.webhook.verify as valid_for
	d.allow == true
	d.deny == set()
	not d.status
	d.dedupe == {"key": "pagerduty:5ac64822-4adc-4fda-ade0-410becf0de4f", "ttl": "24h"}
	d.rate_limit == {"key": "pagerduty:198.51.100.7", "limit": 600, "per": "1m"}
	d.labels == {"event": "incident.triggered", "delivery": "pagerduty:5ac64822-4adc-4fda-ade0-410becf0de4f"}
}

test_denies_a_bad_signature_with_401 if {
	d := data.routes.providers.pagerduty with input as signed with hookwall.webhook.verify as mismatch
	d.allow == false
	d.deny == {"signature: signature mismatch"}
	d.status == 401
	not d.dedupe
	not d.labels
}

test_reason_names_the_failed_check if {
	d := data.routes.providers.pagerduty with input as signed with hookwall.webhook.verify as missing
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
	"body": "{\"event\":{\"id\":\"5ac64822-4adc-4fda-ade0-410becf0de4f\",\"event_type\":\"incident.triggered\"}}",
	"remote_ip": "198.51.100.7",
}}

test_denies_another_method_with_405 if {
	d := data.routes.providers.pagerduty with input as put with hookwall.webhook.verify as valid_for
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
	d := data.routes.providers.pagerduty with input as not_json with hookwall.webhook.verify as valid_for
	d.allow == true
	d.dedupe == {"key": "pagerduty:7ccfa1fbf3940e6f0c0375d87c0f9235a50514e14cb427bdfaf5077987b26ccf", "ttl": "24h"}
}
