package routes.providers.standard_test

# valid_for checks the ready policy reads the secret named after the provider. Like the
# builtin, it gives the message id the signature covers.
valid_for(scheme, _, opts) := {"valid": true, "reason": "", "id": "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"} if {
	scheme == "standard"
	opts.secret == "standard"
}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

missing(_, _, _) := {"valid": false, "reason": "missing header x-signature"}

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

test_forwards_a_verified_request if {
	d := data.routes.providers.standard with input as signed with hookwall.webhook.verify as valid_for
	d.allow == true
	d.deny == set()
	not d.status
	d.dedupe == {"key": "standard:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", "ttl": "72h"}
	d.rate_limit == {"key": "standard:198.51.100.7", "limit": 600, "per": "1m"}
	d.labels == {"event": "invoice.paid", "delivery": "standard:msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"}
}

test_denies_a_bad_signature_with_401 if {
	d := data.routes.providers.standard with input as signed with hookwall.webhook.verify as mismatch
	d.allow == false
	d.deny == {"signature: signature mismatch"}
	d.status == 401
	not d.dedupe
	not d.labels
}

test_reason_names_the_failed_check if {
	d := data.routes.providers.standard with input as signed with hookwall.webhook.verify as missing
	d.deny == {"signature: missing header x-signature"}
	d.status == 401
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

test_denies_another_method_with_405 if {
	d := data.routes.providers.standard with input as put with hookwall.webhook.verify as valid_for
	d.allow == false
	d.deny == {"method PUT is not accepted"}
	d.status == 405
}
