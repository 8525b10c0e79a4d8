package hookwall.lib.providers_test

import data.hookwall.lib.providers

# merged checks what verify hands the builtin: the caller's options, with the secret last.
merged(scheme, request, opts) := {"valid": true, "reason": ""} if {
	scheme == "demo"
	request == input.request
	opts == {"secret": "mine", "tolerance": "1m"}
}

test_verify_merges_options_and_the_secret_wins if {
	r := providers.verify("demo", "mine", {"tolerance": "1m", "secret": "other"}) with input as req("POST", "{}")
		with hookwall.webhook.verify as merged
	r.valid == true
}

req(method, body) := {"request": {
	"method": method,
	"scheme": "https",
	"host": "hooks.example.com:8443",
	"headers": {},
	"body": body,
}}

ok := {"valid": true, "reason": ""}

bad := {"valid": false, "reason": "timestamp outside tolerance"}

test_reasons if {
	providers.reasons(ok, {"POST"}) == set() with input as req("POST", "")
	providers.reasons(bad, {"POST"}) == {"signature: timestamp outside tolerance"} with input as req("POST", "")
	providers.reasons(ok, {"POST"}) == {"method GET is not accepted"} with input as req("GET", "")
	providers.reasons(bad, {"POST"}) == {
		"signature: timestamp outside tolerance",
		"method GET is not accepted",
	} with input as req("GET", "")
}

# A bad signature answers 401 even on the wrong method: the sender is not authenticated.
test_status if {
	not providers.status(ok, {"POST"}) with input as req("POST", "")
	providers.status(bad, {"POST"}) == 401 with input as req("POST", "")
	providers.status(ok, {"POST"}) == 405 with input as req("GET", "")
	providers.status(bad, {"POST"}) == 401 with input as req("GET", "")
}

test_key_namespaces_ids if {
	providers.key("github", "d-1") == "github:d-1"
	not providers.key("github", "")
	not providers.key("stripe", 42)
	not providers.key("stripe", null)
}

test_body_is_parsed_json if {
	providers.body == {"id": "evt_1", "data": {"n": 1}} with input as req("POST", `{"id":"evt_1","data":{"n":1}}`)
	providers.body == [1, 2] with input as req("POST", "[1,2]")
}

# A body that is not JSON leaves body undefined; it must never be an evaluation error, which
# the gateway would answer with a 500.
test_body_undefined_when_not_json if {
	not providers.body with input as req("POST", "token=x&text=hi")
	not providers.body with input as req("POST", "")
	not providers.body with input as req("POST", `{"id":`)
}

test_body_sha256 if {
	providers.body_sha256 == "015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862" with input as req("POST", `{"a":1}`)
}

test_public_url_defaults_to_the_request if {
	providers.public_url == "https://hooks.example.com:8443" with input as req("POST", "")
}

test_public_url_from_data if {
	providers.public_url == "https://public.example.com" with input as req("POST", "")
		with data.hookwall.config.public_url as "https://public.example.com"

	# An empty or non-string value is ignored rather than signing over a wrong URL.
	providers.public_url == "https://hooks.example.com:8443" with input as req("POST", "")
		with data.hookwall.config.public_url as ""
	providers.public_url == "https://hooks.example.com:8443" with input as req("POST", "")
		with data.hookwall.config.public_url as 443
}

test_rate_limit_is_per_provider_and_address if {
	providers.rate_limit("github") == {"key": "github:198.51.100.7", "limit": 600, "per": "1m"} with input as {"request": {"remote_ip": "198.51.100.7"}}
}
