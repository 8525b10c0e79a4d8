package routes.providers.oauth_test

# The builtin is mocked here: the gateway test (engine/gateway) runs this policy with real
# tokens, a real issuer and the production builtin.
good(tok, issuer) := {"valid": true, "reason": "", "claims": {
	"iss": "https://login.example.com/realms/hooks",
	"sub": "svc-42",
	"azp": "billing",
	"scope": "openid hooks:write",
}} if {
	tok == "Bearer t0k"
	issuer == "oauth"
}

scp_only(_, _) := {"valid": true, "reason": "", "claims": {"sub": "svc-7", "scp": ["hooks:write"]}}

no_scope(_, _) := {"valid": true, "reason": "", "claims": {"sub": "svc-42", "scope": "openid"}}

expired(_, _) := {"valid": false, "reason": "token expired", "claims": {}}

req(headers) := {"request": {"method": "POST", "path": "/hooks/events", "headers": headers, "remote_ip": "198.51.100.7"}}

with_token := req({"authorization": "Bearer t0k"})

test_forwards_a_verified_token if {
	d := data.routes.providers.oauth with input as with_token with hookwall.oauth.verify as good
	d.allow == true
	d.deny == set()
	not d.status
	d.labels == {"sender": "oauth:svc-42", "issuer": "https://login.example.com/realms/hooks"}
	d.rate_limit == {"key": "oauth:oauth:svc-42", "limit": 600, "per": "1m"}
}

test_refuses_an_invalid_token_with_401 if {
	d := data.routes.providers.oauth with input as with_token with hookwall.oauth.verify as expired
	d.allow == false
	d.deny == {"token: token expired"}
	d.status == 401
	d.labels == {}
	d.rate_limit.key == "oauth:198.51.100.7"
}

test_refuses_a_request_without_token if {
	d := data.routes.providers.oauth with input as req({}) with hookwall.oauth.verify as good
	d.allow == false
	"missing bearer token" in d.deny
	d.status == 401
}

test_requires_the_configured_scope if {
	d := data.routes.providers.oauth with input as with_token
		with hookwall.oauth.verify as no_scope
		with data.hookwall.config.oauth as {"scope": "hooks:write"}
	d.allow == false
	d.deny == {"token lacks scope hooks:write"}
	d.status == 403
	d.labels.sender == "oauth:svc-42"
}

test_scope_from_scp_list if {
	d := data.routes.providers.oauth with input as with_token
		with hookwall.oauth.verify as scp_only
		with data.hookwall.config.oauth as {"scope": "hooks:write"}
	d.allow == true
	d.labels.sender == "oauth:svc-7"
}

test_sender_from_another_claim if {
	d := data.routes.providers.oauth with input as with_token
		with hookwall.oauth.verify as good
		with data.hookwall.config.oauth as {"sender_claim": "azp"}
	d.labels.sender == "oauth:billing"
}

test_other_issuer_name if {
	d := data.routes.providers.oauth with input as with_token
		with hookwall.oauth.verify as good
		with data.hookwall.config.oauth as {"issuer": "okta"}
	d.allow == false
}
