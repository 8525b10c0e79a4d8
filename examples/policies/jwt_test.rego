package examples.jwt_test

import data.examples.jwt

# A test-only key pair: the tests sign with its private half and swap its public half into
# data.jwks.keys. The shipped JWKS does not hold it, so these tokens open nothing.
signing_key := {
	"kty": "EC", "crv": "P-256", "kid": "test-key",
	"x": "X4cRtcAlvNnnl_P-O7FpemsFbQWgcVkhEXYidYKX71g",
	"y": "Z7Zdg2vqy2svYMW77jTDsipzSf9g2JfUqGLGxT-ti7c",
	"d": "f8lHv41JynTaV8NXiK2OMa8vUNgNIsMOg8mUo37eaIU",
}

# The JWKS document of the tests: it replaces data.jwks whole, so adapting the shipped
# file (your issuer, audience, keys) never breaks these tests.
jwks := {
	"issuer": "https://auth.example.com/",
	"audience": "hookwall",
	"alg": "ES256",
	"keys": [object.remove(object.union(signing_key, {"alg": "ES256", "use": "sig"}), ["d"])],
}

now_s := 1800000000

claims := {
	"iss": "https://auth.example.com/",
	"aud": "hookwall",
	"sub": "billing-service",
	"scope": "webhooks:send events:read",
	"iat": now_s - 60,
	"exp": now_s + 600,
}

sign(payload) := io.jwt.encode_sign({"alg": "ES256", "kid": "test-key", "typ": "JWT"}, payload, signing_key)

req(auth) := {"request": {"headers": {"authorization": auth}, "received_at": now_s * 1000000000}}

bearer(tok) := req(concat(" ", ["Bearer", tok]))

test_valid_token if {
	jwt.allow with input as bearer(sign(claims)) with data.jwks as jwks
	jwt.labels == {"subject": "billing-service"} with input as bearer(sign(claims)) with data.jwks as jwks
	count(jwt.deny) == 0 with input as bearer(sign(claims)) with data.jwks as jwks
}

test_lowercase_bearer if {
	jwt.allow with input as req(concat(" ", ["bearer", sign(claims)])) with data.jwks as jwks
}

test_shipped_keys_do_not_accept_test_tokens if {
	not jwt.allow with input as bearer(sign(claims))
	jwt.status == 401 with input as bearer(sign(claims))
}

# The JWKS file holds public keys only, each for the pinned algorithm when it names one.
test_jwks_data_is_usable if {
	is_string(data.jwks.issuer)
	is_string(data.jwks.audience)
	count(data.jwks.keys) > 0
	every k in data.jwks.keys {
		is_string(k.kty)
		object.get(k, "alg", data.jwks.alg) == data.jwks.alg
		not k.d
	}
}

test_expired if {
	tok := sign(object.union(claims, {"exp": now_s - 1}))
	not jwt.allow with input as bearer(tok) with data.jwks as jwks
	jwt.status == 401 with input as bearer(tok) with data.jwks as jwks
	jwt.deny == {"invalid token: signature, issuer, audience or lifetime"} with input as bearer(tok)
		with data.jwks as jwks
}

test_not_yet_valid if {
	tok := sign(object.union(claims, {"nbf": now_s + 60}))
	not jwt.allow with input as bearer(tok) with data.jwks as jwks
}

test_wrong_issuer_or_audience if {
	not jwt.allow with input as bearer(sign(object.union(claims, {"iss": "https://evil.example/"})))
		with data.jwks as jwks
	not jwt.allow with input as bearer(sign(object.union(claims, {"aud": "someone-else"})))
		with data.jwks as jwks
}

test_tampered_payload if {
	parts := split(sign(claims), ".")
	forged := base64url.encode_no_pad(json.marshal(object.union(claims, {"sub": "admin"})))
	tok := concat(".", [parts[0], forged, parts[2]])
	not jwt.allow with input as bearer(tok) with data.jwks as jwks
	jwt.status == 401 with input as bearer(tok) with data.jwks as jwks
}

test_hmac_token_refused if {
	tok := io.jwt.encode_sign({"alg": "HS256", "typ": "JWT"}, claims, {"kty": "oct", "k": "c2VjcmV0"})
	not jwt.allow with input as bearer(tok) with data.jwks as jwks
}

test_missing_scope if {
	tok := sign(object.union(claims, {"scope": "events:read"}))
	not jwt.allow with input as bearer(tok) with data.jwks as jwks
	jwt.status == 403 with input as bearer(tok) with data.jwks as jwks
	jwt.deny == {"token lacks scope webhooks:send"} with input as bearer(tok) with data.jwks as jwks
}

test_missing_token if {
	jwt.deny == {"missing bearer token"} with input as {"request": {"headers": {}, "received_at": 0}}
	jwt.deny == {"missing bearer token"} with input as req("Basic Zm9vOmJhcg==")
}

# Garbage must be a clean 401, never an evaluation error.
test_malformed_tokens if {
	none_alg := concat(".", [
		base64url.encode_no_pad(`{"alg":"none"}`),
		base64url.encode_no_pad(json.marshal(claims)),
		"",
	])
	jwe := concat(".", [base64url.encode_no_pad(`{"alg":"ES256","enc":"A256GCM"}`), "e30", "c2ln"])
	nested := concat(".", [base64url.encode_no_pad(`{"alg":"ES256","cty":"JWT"}`), "e30", "c2ln"])
	every tok in [
		"garbage", "a.b.c", "a.b", "e30.e30.", "!!!.e30.c2ln", "e30.e30.c2ln",
		"WzFd.e30.c2ln", "eyJhbGciOjF9.e30.c2ln", "eyJhbGciOiJFUzI1NiJ9.WzFd.c2ln",
		none_alg, jwe, nested,
	] {
		jwt.deny == {"malformed token"} with input as bearer(tok) with data.jwks as jwks
		jwt.status == 401 with input as bearer(tok) with data.jwks as jwks
	}
}
