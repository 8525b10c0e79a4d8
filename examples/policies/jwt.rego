# Senders that authenticate with a JWT (OAuth client credentials, a service mesh) instead of
# signing the body: "Authorization: Bearer <jwt>", verified against a JWKS kept as policy data
# (examples/policies/jwks/data.json → data.jwks).
#
# io.jwt.decode_verify checks the signature against the JWKS with the algorithm pinned (no
# "alg": "none", no algorithm confusion), then iss, aud, exp and nbf at the request's
# received_at. The gateway evaluates with strict builtin errors, so decode_verify on a
# malformed token would be an evaluation error (500); well_formed rejects those first, and a
# bad token gets 401 like any other.
package examples.jwt

default allow := false

allow if {
	verified
	required_scope in scopes
}

required_scope := "webhooks:send"

token := substring(auth, 7, -1) if {
	auth := input.request.headers.authorization
	lower(substring(auth, 0, 7)) == "bearer "
}

constraints := {
	"cert": json.marshal({"keys": data.jwks.keys}),
	"alg": data.jwks.alg,
	"iss": data.jwks.issuer,
	"aud": data.jwks.audience,
	"time": input.request.received_at,
}

result := io.jwt.decode_verify(token, constraints) if well_formed(token)

verified if result[0]

claims := result[2] if verified

scopes := {s | some s in split(claims.scope, " ")} if is_string(claims.scope)

# A compact JWS whose three parts are base64url, whose header is a JSON object with a string
# alg and only the alg, kid and typ fields (no JWE "enc", no nested "cty", no "crit"), and
# whose payload is a JSON object: what decode_verify can read without an error.
well_formed(t) if {
	parts := split(t, ".")
	count(parts) == 3
	every p in parts {
		b64url(p)
	}
	header := json_object(parts[0])
	is_string(header.alg)
	every k, v in header {
		k in {"alg", "kid", "typ"}
		is_string(v)
	}
	json_object(parts[1])
}

b64url(p) if {
	regex.match(`^[A-Za-z0-9_-]+$`, p)
	count(p) % 4 != 1
}

json_object(p) := obj if {
	s := base64url.decode(p)
	json.is_valid(s)
	obj := json.unmarshal(s)
	is_object(obj)
}

deny contains "missing bearer token" if not token

deny contains "malformed token" if {
	token
	not well_formed(token)
}

deny contains "invalid token: signature, issuer, audience or lifetime" if {
	well_formed(token)
	not verified
}

deny contains sprintf("token lacks scope %s", [required_scope]) if {
	verified
	not required_scope in scopes
}

status := 401 if not verified
else := 403

labels := {"subject": claims.sub} if verified
