# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.twilio and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "twilio" holds the provider's vector secret).
package routes.providers.vectors.twilio_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1700000000

# Vector twilio-python-form (expect valid).
test_twilio_python_form if {
	d := data.routes.providers.twilio with input as {"request": req_twilio_python_form}
		with data.hookwall.config.public_url as "https://mycompany.com"
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "twilio:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "twilio:36229c2a66ca01c714a959d69e25d139cb6839b908c35979cfe7578dee121436", "ttl": "24h"}
	d.labels.delivery == "twilio:36229c2a66ca01c714a959d69e25d139cb6839b908c35979cfe7578dee121436"
}

req_twilio_python_form := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/myapp.php",
	"uri": "/myapp.php?foo=1&bar=2",
	"headers": {
		"x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
		"content-type": "application/x-www-form-urlencoded",
	},
	"body": "CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309",
	"remote_ip": "192.0.2.10",
}

# Vector twilio-python-form-port-443 (expect valid: same request signed over URL with explicit :443; validators must try with and without the default port).
test_twilio_python_form_port_443 if {
	d := data.routes.providers.twilio with input as {"request": req_twilio_python_form_port_443}
		with data.hookwall.config.public_url as "https://mycompany.com"
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "twilio:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "twilio:36229c2a66ca01c714a959d69e25d139cb6839b908c35979cfe7578dee121436", "ttl": "24h"}
	d.labels.delivery == "twilio:36229c2a66ca01c714a959d69e25d139cb6839b908c35979cfe7578dee121436"
}

req_twilio_python_form_port_443 := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/myapp.php",
	"uri": "/myapp.php?foo=1&bar=2",
	"headers": {
		"x-twilio-signature": "kvajT1Ptam85bY51eRf/AJRuM3w=",
		"content-type": "application/x-www-form-urlencoded",
	},
	"body": "CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309",
	"remote_ip": "192.0.2.10",
}

# Vector twilio-python-json-bodySHA256 (expect valid).
test_twilio_python_json_bodysha256 if {
	d := data.routes.providers.twilio with input as {"request": req_twilio_python_json_bodysha256}
		with data.hookwall.config.public_url as "https://mycompany.com"
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "twilio:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "twilio:41b0a32706e64642a186a80636950840a540e4aa15a31ac2743f6abe3c0dc513", "ttl": "24h"}
	d.labels.delivery == "twilio:41b0a32706e64642a186a80636950840a540e4aa15a31ac2743f6abe3c0dc513"
}

req_twilio_python_json_bodysha256 := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/myapp.php",
	"uri": "/myapp.php?foo=1&bar=2&bodySHA256=0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620",
	"headers": {
		"x-twilio-signature": "a9nBmqA0ju/hNViExpshrM61xv4=",
		"content-type": "application/json",
	},
	"body": "{\"property\": \"value\", \"boolean\": true}",
	"remote_ip": "192.0.2.10",
}

# Vector twilio-tampered-param (expect invalid: Digits changed 1234->1235).
test_twilio_tampered_param if {
	d := data.routes.providers.twilio with input as {"request": req_twilio_tampered_param}
		with data.hookwall.config.public_url as "https://mycompany.com"
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_twilio_tampered_param := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/myapp.php",
	"uri": "/myapp.php?foo=1&bar=2",
	"headers": {
		"x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
		"content-type": "application/x-www-form-urlencoded",
	},
	"body": "CallSid=CA1234567890ABCDE&Digits=1235&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309",
	"remote_ip": "192.0.2.10",
}

# Vector twilio-wrong-url (expect invalid: URL query changed (proxy rewrote URL)).
test_twilio_wrong_url if {
	d := data.routes.providers.twilio with input as {"request": req_twilio_wrong_url}
		with data.hookwall.config.public_url as "https://mycompany.com"
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_twilio_wrong_url := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/myapp.php",
	"uri": "/myapp.php?foo=1&bar=3",
	"headers": {
		"x-twilio-signature": "RSOYDt4T1cUTdK1PDd93/VVr8B8=",
		"content-type": "application/x-www-form-urlencoded",
	},
	"body": "CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309",
	"remote_ip": "192.0.2.10",
}

# Without public_url data the URL is the request's own scheme and Host: a request that reached
# https://mycompany.com directly (vector twilio-python-form) verifies.
test_twilio_default_url_is_the_request_s if {
	d := data.routes.providers.twilio with input as {"request": object.union(req_twilio_python_form, {"scheme": "https", "host": "mycompany.com"})}
	d.allow == true
}

# Behind a proxy without public_url data, the gateway's own URL is not the one Twilio signed.
test_twilio_proxy_without_public_url_fails if {
	d := data.routes.providers.twilio with input as {"request": req_twilio_python_form}
	d.allow == false
	d.status == 401
}
