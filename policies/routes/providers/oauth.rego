# Ready route policy for senders that authenticate with an OAuth 2.0 / OpenID Connect bearer
# token ("Authorization: Bearer <token>"); see docs/providers/oauth.md.
#
#	[[oauth]]
#	name = "oauth"                                   # the issuer this policy checks with
#	issuer = "https://login.example.com/realms/hooks"
#	audiences = ["https://hooks.example.com"]
#
#	[[route]]
#	name = "events"
#	path = "/hooks/events"
#	methods = ["POST"]
#	upstream = "http://127.0.0.1:3000"
#	policy = "routes.providers.oauth"
#
# A request is forwarded when its token verifies with the issuer (signature with the
# issuer's published keys, iss, aud, exp, nbf) and carries the required scope. Settings, all
# optional, come from policy data (data.json beside the policies):
#
#	{"hookwall": {"config": {"oauth": {
#	  "issuer": "oauth",       the [[oauth]] name (default "oauth")
#	  "scope": "hooks:write",  a scope the token must carry, in "scope" or "scp" (default none)
#	  "sender_claim": "sub"    the claim that names the sender (default "sub")
#	}}}}
#
# labels.sender is "<issuer>:<claim value>": the sender identity the decision log and the
# anomaly watcher key on. The rate limit is per sender once the token verified, per client
# address before.
package routes.providers.oauth

default allow := false

issuer := s if {
	s := data.hookwall.config.oauth.issuer
	is_string(s)
} else := "oauth"

required_scope := s if {
	s := data.hookwall.config.oauth.scope
	is_string(s)
} else := ""

sender_claim := s if {
	s := data.hookwall.config.oauth.sender_claim
	is_string(s)
} else := "sub"

# One call per evaluation: every rule below reads this one.
token := hookwall.oauth.verify(input.request.headers.authorization, issuer)

valid if token.valid

# Scopes from "scope" (RFC 8693: space-separated) and "scp" (a list, as Okta and Azure AD send).
scopes contains s if {
	valid
	is_string(token.claims.scope)
	some s in split(token.claims.scope, " ")
}

scopes contains s if {
	valid
	is_array(token.claims.scp)
	some s in token.claims.scp
}

scoped if required_scope == ""

scoped if required_scope in scopes

allow if {
	valid
	scoped
}

deny contains "missing bearer token" if not input.request.headers.authorization

deny contains sprintf("token: %s", [token.reason]) if not token.valid

deny contains sprintf("token lacks scope %s", [required_scope]) if {
	valid
	not scoped
}

status := 401 if not valid

else := 403 if not scoped

sender := concat(":", [issuer, id]) if {
	valid
	id := token.claims[sender_claim]
	is_string(id)
	id != ""
}

labels["sender"] := sender

labels["issuer"] := token.claims.iss if {
	valid
	is_string(token.claims.iss)
}

rate_limit := {"key": concat(":", ["oauth", sender]), "limit": 600, "per": "1m"} if sender

else := {"key": concat(":", ["oauth", input.request.remote_ip]), "limit": 600, "per": "1m"}
