package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// secAuthConfig serves the shipped example policies (copied from policies/) on three routes.
const secAuthConfig = `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[log]
decisions = "{{DIR}}/decisions.log"

[secrets]
partner_keys = {file = "partner-keys"}

[[route]]
name = "apikey"
path = "/hooks/apikey"
upstream = "{{UPSTREAM}}"
policy = "examples.apikey"

[[route]]
name = "jwt"
path = "/hooks/jwt"
upstream = "{{UPSTREAM}}"
policy = "examples.jwt"

[[route]]
name = "validation"
path = "/hooks/validation"
upstream = "{{UPSTREAM}}"
policy = "examples.validation"
`

type secJWTKey struct {
	key  *ecdsa.PrivateKey
	jwks string
}

func secNewJWTKey(t *testing.T, kid string) *secJWTKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := k.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	jwks, _ := json.Marshal(map[string]any{
		"issuer": "https://auth.test/", "audience": "hookwall-test", "alg": "ES256",
		"keys": []map[string]string{{"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "x": b64(pub[1:33]), "y": b64(pub[33:])}},
	})
	return &secJWTKey{key: k, jwks: string(jwks)}
}

// sign makes an ES256 compact JWS (RFC 7518 section 3.4: the signature is R || S, 32 bytes each).
func (k *secJWTKey) sign(t *testing.T, claims map[string]any) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": "k1"})
	c, _ := json.Marshal(claims)
	signing := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, k.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + b64(sig)
}

func secStartAuth(t *testing.T, keys []string, jwks string) (*env, *upstream) {
	t.Helper()
	up := startUpstream(t)
	var list strings.Builder
	list.WriteString("# partner keys, one sha256 per line\n")
	for _, k := range keys {
		sum := sha256.Sum256([]byte(k))
		list.WriteString("sha256:" + hex.EncodeToString(sum[:]) + "\n")
	}
	e := startEnv(t, strings.ReplaceAll(secAuthConfig, "{{UPSTREAM}}", up.URL()), map[string]string{
		"policies/examples/apikey.rego":     secShipped(t, "examples/policies/apikey.rego"),
		"policies/examples/jwt.rego":        secShipped(t, "examples/policies/jwt.rego"),
		"policies/jwks/data.json":           jwks,
		"policies/examples/validation.rego": secShipped(t, "examples/policies/validation.rego"),
		"partner-keys":                      list.String(),
	}, Options{})
	return e, up
}

func TestSecurityAPIKeys(t *testing.T) {
	const k1, k2 = "hk_4f0c5e1a9b2d7c3e8f6a1b4d9c2e7f05", "hk_second_6a1b4d9c2e7f054f0c5e1a9b2d7c3e8f"
	e, up := secStartAuth(t, []string{k1, k2}, secShipped(t, "examples/policies/jwks/data.json"))
	cases := []struct {
		name    string
		headers map[string]string
		status  int
	}{
		{"first key", map[string]string{"X-Api-Key": k1}, 200},
		{"second key", map[string]string{"X-Api-Key": k2}, 200},
		{"bearer", map[string]string{"Authorization": "Bearer " + k1}, 200},
		{"wrong key", map[string]string{"X-Api-Key": "hk_guess"}, 401},
		{"key with a changed last byte", map[string]string{"X-Api-Key": k1[:len(k1)-1] + "6"}, 401},
		{"hash instead of key", map[string]string{"X-Api-Key": "sha256:" + strings.Repeat("0", 64)}, 401},
		{"no key", nil, 401},
	}
	forwarded := 0
	for _, tc := range cases {
		r := e.do("POST", "/hooks/apikey", []byte(`{}`), tc.headers)
		if r.Status != tc.status {
			t.Fatalf("%s: status %d body %s, want %d", tc.name, r.Status, r.Body, tc.status)
		}
		if r.Status == 200 {
			forwarded++
		}
	}
	if n := len(up.requests()); n != forwarded {
		t.Fatalf("upstream got %d requests, want %d", n, forwarded)
	}
	// The presented keys appear in neither the decision log nor the process log.
	awaitDecisionRecords(t, e.dir+"/decisions.log", len(cases))
	logs := secReadFile(t, e.dir+"/decisions.log") + e.logBuf.String()
	for _, k := range []string{k1, k2, "hk_guess"} {
		if strings.Contains(logs, k) {
			t.Fatalf("a presented API key %q is in the logs", k)
		}
	}
}

func TestSecurityJWT(t *testing.T) {
	key := secNewJWTKey(t, "k1")
	other := secNewJWTKey(t, "k1") // same kid, another key: a forger's
	e, up := secStartAuth(t, nil, key.jwks)
	now := time.Now().Unix()
	claims := func(over map[string]any) map[string]any {
		c := map[string]any{"iss": "https://auth.test/", "aud": "hookwall-test", "sub": "svc-billing", "scope": "webhooks:send", "iat": now - 5, "exp": now + 300}
		for k, v := range over {
			c[k] = v
		}
		return c
	}
	cases := []struct {
		name, auth string
		status     int
	}{
		{"valid", "Bearer " + key.sign(t, claims(nil)), 200},
		{"expired", "Bearer " + key.sign(t, claims(map[string]any{"exp": now - 60})), 401},
		{"other issuer", "Bearer " + key.sign(t, claims(map[string]any{"iss": "https://evil.test/"})), 401},
		{"forged with another key", "Bearer " + other.sign(t, claims(nil)), 401},
		{"no scope", "Bearer " + key.sign(t, claims(map[string]any{"scope": "read"})), 403},
		{"garbage", "Bearer garbage", 401},
		{"three garbage parts", "Bearer a.b.c", 401},
		{"alg none", "Bearer eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x"}`)) + ".", 401},
		{"no token", "", 401},
	}
	for _, tc := range cases {
		h := map[string]string{}
		if tc.auth != "" {
			h["Authorization"] = tc.auth
		}
		r := e.do("POST", "/hooks/jwt", []byte(`{}`), h)
		if r.Status != tc.status {
			t.Fatalf("%s: status %d body %s, want %d", tc.name, r.Status, r.Body, tc.status)
		}
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("upstream got %d requests, want 1", n)
	}
	for _, d := range awaitDecisionRecords(t, e.dir+"/decisions.log", len(cases)) {
		if d["status"] == float64(500) {
			t.Fatalf("a token caused an evaluation error: %v", d)
		}
	}
}

func TestSecurityValidation(t *testing.T) {
	e, up := secStartAuth(t, nil, secShipped(t, "examples/policies/jwks/data.json"))
	good := `{"id":"evt_1a2b3c4d5e6f","type":"order.paid","created":1800000000,"data":{"order_id":"ord_42","amount":1999,"currency":"EUR"}}`
	cases := []struct {
		name, ct, body string
		status         int
		reason         string
	}{
		{"valid", "application/json; charset=utf-8", good, 200, ""},
		{"wrong content-type", "text/plain", good, 415, "content-type text/plain is not accepted"},
		{"no content-type", "", good, 415, "missing content-type"},
		{"not JSON", "application/json", `id=evt_1a2b3c4d5e6f`, 422, "body is not JSON"},
		{"cut short", "application/json", `{"id":`, 422, "body starts as a json object or array but is not json"},
		{"array", "application/json", "[" + good + "]", 422, "body must be a JSON object"},
		{"null", "application/json", "null", 422, "body must be a JSON object"},
		{"schema: bad currency", "application/json", strings.Replace(good, `"EUR"`, `"eur"`, 1), 422, "currency"},
		{"schema: extra field", "application/json", strings.Replace(good, `{"id"`, `{"admin":true,"id"`, 1), 422, "admin"},
		{"schema: float amount", "application/json", strings.Replace(good, "1999", "19.99", 1), 422, "amount"},
	}
	for _, tc := range cases {
		h := map[string]string{}
		if tc.ct != "" {
			h["Content-Type"] = tc.ct
		}
		r := e.do("POST", "/hooks/validation", []byte(tc.body), h)
		if r.Status != tc.status || !strings.Contains(r.Body, tc.reason) {
			t.Fatalf("%s: status %d body %s, want %d with %q", tc.name, r.Status, r.Body, tc.status, tc.reason)
		}
	}
	reqs := up.requests()
	if len(reqs) != 1 || string(reqs[0].Body) != good {
		t.Fatalf("upstream got %d requests; want exactly the valid body", len(reqs))
	}
}
