package examples.apikey_test

import data.examples.apikey

# The builtin is replaced by a stand-in that accepts one key and checks the secret's name;
# the real one is tested in Go (engine/policy) and through a gateway (engine/gateway).
mock_verify(key, secret) if {
	secret == "partner_keys"
	key == "good-key"
}

req(headers) := {"request": {"headers": headers}}

test_x_api_key if {
	apikey.allow with input as req({"x-api-key": "good-key"}) with hookwall.apikey.verify as mock_verify
	count(apikey.deny) == 0 with input as req({"x-api-key": "good-key"}) with hookwall.apikey.verify as mock_verify
}

test_bearer if {
	apikey.allow with input as req({"authorization": "Bearer good-key"}) with hookwall.apikey.verify as mock_verify
}

test_x_api_key_wins_over_bearer if {
	not apikey.allow with input as req({"x-api-key": "bad", "authorization": "Bearer good-key"})
		with hookwall.apikey.verify as mock_verify
}

test_wrong_key if {
	not apikey.allow with input as req({"x-api-key": "bad"}) with hookwall.apikey.verify as mock_verify
	apikey.deny == {"invalid API key"} with input as req({"x-api-key": "bad"}) with hookwall.apikey.verify as mock_verify
	apikey.status == 401 with input as req({"x-api-key": "bad"}) with hookwall.apikey.verify as mock_verify
}

test_missing_key if {
	apikey.deny == {"missing API key"} with input as req({}) with hookwall.apikey.verify as mock_verify
	apikey.deny == {"missing API key"} with input as req({"authorization": "Basic Zm9vOmJhcg=="})
		with hookwall.apikey.verify as mock_verify
	not apikey.allow with input as req({}) with hookwall.apikey.verify as mock_verify
}
