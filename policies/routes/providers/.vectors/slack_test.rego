# Real signed requests from engine/webhook/testdata/webhook-vectors.json (each test names its
# vector) through the ready policy data.routes.providers.slack and the production builtin.
#
# This directory is hidden from policy loaders on purpose: these tests need the vectors'
# secrets in [secrets] and a clock pinned to the vectors' time, which the Go runner
# engine/policy/providers_test.go supplies (secret "slack" holds the provider's vector secret).
package routes.providers.vectors.slack_test

# clock is the vectors' "now" (Unix seconds); the Go runner pins the verify clock to it.
clock := 1531420618

# Vector slack-docs-slash-command (expect valid).
test_slack_docs_slash_command if {
	d := data.routes.providers.slack with input as {"request": req_slack_docs_slash_command}
	d.allow == true
	d.deny == set()
	not d.status
	d.rate_limit == {"key": "slack:192.0.2.10", "limit": 600, "per": "1m"}
	d.dedupe == {"key": "slack:390eeeff8d0cb7c9f6ecf8a88c3df6452fea0914eb02f64844369f3758d8d330", "ttl": "1h"}
	d.labels.delivery == "slack:390eeeff8d0cb7c9f6ecf8a88c3df6452fea0914eb02f64844369f3758d8d330"
}

req_slack_docs_slash_command := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/slack",
	"uri": "/hooks/slack",
	"headers": {
		"x-slack-request-timestamp": "1531420618",
		"x-slack-signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
	},
	"body": "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c",
	"remote_ip": "192.0.2.10",
}

# Vector slack-tampered-body (expect invalid: body + '------').
test_slack_tampered_body if {
	d := data.routes.providers.slack with input as {"request": req_slack_tampered_body}
	d.allow == false
	d.status == 401
	count(d.deny) == 1
	some reason in d.deny
	startswith(reason, "signature: signature mismatch")
	not d.dedupe
	not d.labels
}

req_slack_tampered_body := {
	"method": "POST",
	"scheme": "http",
	"host": "gateway.internal:8080",
	"path": "/hooks/slack",
	"uri": "/hooks/slack",
	"headers": {
		"x-slack-request-timestamp": "1531420618",
		"x-slack-signature": "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503",
	},
	"body": "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c------",
	"remote_ip": "192.0.2.10",
}
