package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const oauthSecrets = `
[secrets]
idp_client = {env = "IDP_CLIENT"}
hs = {env = "HS"}
`

func TestOAuthKeys(t *testing.T) {
	raw := policiesRoute + oauthSecrets + `
[[oauth]]
name = "okta"
issuer = "https://example.okta.com/oauth2/default"
audiences = ["api://hooks"]
algorithms = ["RS256", "ES256", "HS256"]
hmac_secret = "hs"
leeway = "45s"
introspection_url = "https://example.okta.com/oauth2/default/v1/introspect"
client_id = "gateway"
client_secret = "idp_client"
cache_ttl = "10m"
max_stale = "2h"
max_keys = 8
timeout = "3s"

[[oauth]]
name = "local"
jwks_url = "http://127.0.0.1:5556/keys"
issuer = "http://127.0.0.1:5556"
audiences = ["hooks"]

[[oauth]]
name = "shared"
jwks_url = "https://login.example/common/keys"
any_issuer = true
audiences = ["hooks"]
`
	c, err := Parse("/etc/hookwall/gateway.toml", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.OAuth) != 3 {
		t.Fatalf("%d issuers", len(c.OAuth))
	}
	if s := c.OAuth[2]; !s.AnyIssuer || s.Issuer != "" {
		t.Fatalf("any_issuer decoded as %+v", s)
	}
	o := c.OAuth[0]
	if o.Name != "okta" || o.Leeway.D() != 45*time.Second || o.CacheTTL.D() != 10*time.Minute || o.MaxStale.D() != 2*time.Hour ||
		o.MaxKeys != 8 || o.Timeout.D() != 3*time.Second || o.ClientSecret != "idp_client" || o.HMACSecret != "hs" || len(o.Algorithms) != 3 {
		t.Fatalf("decoded %+v", o)
	}
}

func TestOAuthKeysInvalid(t *testing.T) {
	cases := []struct {
		name, toml string
		line       int
		key, msg   string
	}{
		{"no name", "[[oauth]]\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\n", 1, "oauth[1].name", "required"},
		{"no source", "[[oauth]]\nname = \"a\"\n", 1, "oauth[1].issuer", "set issuer"},
		// A key set several tenants share signs every tenant's tokens: without an iss to
		// match, another tenant's token with the right aud would pass.
		{"jwks_url without issuer", "[[oauth]]\nname = \"a\"\njwks_url = \"https://idp.test/k\"\naudiences = [\"a\"]\n", 1, "oauth[1].issuer", "required with jwks_url"},
		{"any_issuer with issuer", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\njwks_url = \"https://idp.test/k\"\nany_issuer = true\naudiences = [\"a\"]\n", 5, "oauth[1].any_issuer", "only applies"},
		{"any_issuer without jwks_url", "[[oauth]]\nname = \"a\"\nintrospection_url = \"https://idp.test/i\"\nclient_id = \"c\"\nclient_secret = \"idp_client\"\nany_issuer = true\naudiences = [\"a\"]\n", 6, "oauth[1].any_issuer", "only applies"},
		{"plain http", "[[oauth]]\nname = \"a\"\nissuer = \"http://idp.example.com\"\naudiences = [\"a\"]\n", 3, "oauth[1].issuer", "loopback host only"},
		{"no audiences", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\n", 1, "oauth[1].audiences", "required"},
		{"alg none", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\nalgorithms = [\"none\"]\n", 5, "oauth[1].algorithms", "never accepted"},
		{"unknown alg", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\nalgorithms = [\"RS1\"]\n", 5, "oauth[1].algorithms", "unknown algorithm"},
		{"HMAC without secret", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\nalgorithms = [\"HS256\"]\n", 5, "oauth[1].algorithms", "needs hmac_secret"},
		{"secret not in [secrets]", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\nalgorithms = [\"HS256\"]\nhmac_secret = \"nope\"\n", 6, "oauth[1].hmac_secret", "no secret named"},
		{"introspection without client", "[[oauth]]\nname = \"a\"\nintrospection_url = \"https://idp.test/i\"\naudiences = [\"a\"]\n", 3, "oauth[1].introspection_url", "needs client_id"},
		// An active answer for a token the issuer minted for another API would pass.
		{"introspection without audiences", "[[oauth]]\nname = \"a\"\nintrospection_url = \"https://idp.test/i\"\nclient_id = \"c\"\nclient_secret = \"idp_client\"\n", 1, "oauth[1].audiences", "required"},
		{"client without introspection", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\nclient_id = \"c\"\n", 5, "oauth[1].client_id", "only applies with introspection_url"},
		{"duplicate", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\n[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\n", 6, "oauth[2].name", "duplicate"},
		{"max_keys", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\nmax_keys = -1\n", 5, "oauth[1].max_keys", "between"},
		{"cache_ttl", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\ncache_ttl = \"10ms\"\n", 5, "oauth[1].cache_ttl", "at least"},
		{"unknown key", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\njwks = \"x\"\n", 5, "oauth.jwks", "unknown key"},
		{"bad duration", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\nleeway = \"soon\"\n", 4, "oauth.leeway", "invalid duration"},
		// A leeway or max_stale written as 0 would take the default (30s, 1h) in its place: a
		// token 20 s past its exp accepted, or keys served for an hour after the issuer went
		// down, where the operator asked for none.
		{"leeway 0", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\nleeway = \"0s\"\n", 5, "oauth[1].leeway", "0 is not a value here"},
		{"max_stale 0", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\nmax_stale = \"0\"\n", 5, "oauth[1].max_stale", "0 is not a value here"},
		{"leeway of a year", "[[oauth]]\nname = \"a\"\nissuer = \"https://idp.test\"\naudiences = [\"a\"]\nleeway = \"8760h\"\n", 5, "oauth[1].leeway", "at most 5m0s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("g.toml", []byte(policiesRoute+oauthSecrets+tc.toml))
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("%T %v, want *Error", err, err)
			}
			base := strings.Count(policiesRoute+oauthSecrets, "\n")
			if ce.File != "g.toml" || ce.Line != base+tc.line || ce.Key != tc.key || !strings.Contains(ce.Msg, tc.msg) {
				t.Errorf("got %q (line %d key %q), want line %d key %q containing %q", err, ce.Line, ce.Key, base+tc.line, tc.key, tc.msg)
			}
		})
	}
}
