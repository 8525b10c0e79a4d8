package oauth

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/hookwall/hookwall/engine/internal/testutil"
	"github.com/hookwall/hookwall/engine/oauth/oauthtest"
)

const audience = "https://api.example.test"

// quiet drops the issuers' log lines: the tests provoke failed fetches on purpose.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startIssuer starts an issuer of p with cfg's fields filled in where empty, and waits for
// its first key set.
func startIssuer(t *testing.T, p *oauthtest.IDP, cfg Config) *Issuer {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "test"
	}
	if cfg.Issuer == "" && cfg.JWKSURL == "" && cfg.IntrospectionURL == "" {
		cfg.Issuer = p.Issuer()
	}
	if cfg.Audiences == nil {
		cfg.Audiences = []string{audience}
	}
	is, err := newIssuer(cfg, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	is.Start()
	t.Cleanup(is.Close)
	if cfg.Issuer != "" || cfg.JWKSURL != "" {
		testutil.WaitUntil(t, 5*time.Second, "the first key set", func() bool { return is.Stats().Keys > 0 || is.Stats().Failures > 0 })
	}
	return is
}

func claims(iss string, extra map[string]any) map[string]any {
	now := time.Now().Unix()
	c := map[string]any{"iss": iss, "aud": audience, "sub": "svc-42", "exp": now + 300, "iat": now - 5, "scope": "hooks:write"}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

// rawToken assembles a compact JWS from a header and claims, signed with sig: attacks that
// no honest library produces.
func rawToken(t *testing.T, hdr, cl map[string]any, sig []byte) string {
	t.Helper()
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(cl)
	e := base64.RawURLEncoding
	return e.EncodeToString(h) + "." + e.EncodeToString(c) + "." + e.EncodeToString(sig)
}

func TestVerifyTokens(t *testing.T) {
	rs, es, ed := oauthtest.RSA(t, 0, "rsa-1"), oauthtest.EC(t, "ec-1"), oauthtest.Ed(t, "ed-1")
	p := oauthtest.NewIDP(t, rs, es, ed)
	is := startIssuer(t, p, Config{Algorithms: []string{"RS256", "PS256", "ES256", "EdDSA"}})
	iss := p.Issuer()
	now := time.Now()
	ok := oauthtest.Mint(t, rs, claims(iss, nil))
	pubDER, _ := x509.MarshalPKIXPublicKey(oauthtest.RSA(t, 0, "").Key.Public())
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	hsWithPublic, err := jws.Sign(mustJSON(claims(iss, nil)), jws.WithKey(jwa.HS256(), pubPEM, jws.WithProtectedHeaders(kidHeader("rsa-1"))))
	if err != nil {
		t.Fatal(err)
	}
	// An ES256 token that names the RSA key's kid.
	esAsRSA := oauthtest.Mint(t, oauthtest.Signer{Kid: "rsa-1", Alg: jwa.ES256(), Key: oauthtest.EC(t, "").Key}, claims(iss, nil))
	parts := strings.Split(ok, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(mustJSON(claims(iss, map[string]any{"sub": "admin"}))) + "." + parts[2]
	// The same signature bytes spelled otherwise: a 256-byte signature leaves 4 pad bits in
	// its last character, which a lenient decoder ignores.
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, ok[len(ok)-1])
	respelled := ok[:len(ok)-1] + string(alphabet[last&^0xf|(last+1)&0xf])
	cases := []struct {
		name, token, reason string
	}{
		{"RS256", ok, ""},
		{"authorization header", "Bearer " + ok, ""},
		{"scheme in lower case", "bearer " + ok, ""},
		{"ES256", oauthtest.Mint(t, es, claims(iss, nil)), ""},
		{"EdDSA", oauthtest.Mint(t, ed, claims(iss, nil)), ""},
		{"PS256", oauthtest.Mint(t, oauthtest.Signer{Kid: "rsa-1", Alg: jwa.PS256(), Key: oauthtest.RSA(t, 0, "").Key}, claims(iss, nil)), ""},
		{"no kid, one key fits", oauthtest.Mint(t, oauthtest.Signer{Alg: jwa.ES256(), Key: oauthtest.EC(t, "").Key}, claims(iss, nil)), ""},
		{"aud list naming ours", oauthtest.Mint(t, rs, claims(iss, map[string]any{"aud": []string{"other", audience}})), ""},
		{"expired within leeway", oauthtest.Mint(t, rs, claims(iss, map[string]any{"exp": now.Unix() - 10})), ""},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("u:p")), ReasonNotBearer},
		{"token scheme", "Token " + ok, ReasonNotBearer},
		{"bearer without token", "Bearer ", ReasonNoToken},
		{"empty", "", ReasonNoToken},
		{"two tokens", "Bearer " + ok + " " + ok, ReasonMalformed},
		{"two parts", parts[0] + "." + parts[1], ReasonMalformed},
		{"newline in the signature", ok[:len(ok)-4] + "\n" + ok[len(ok)-4:], ReasonMalformed},
		{"not base64", "a!b.c.d", ReasonMalformed},
		{"alg none", rawToken(t, map[string]any{"alg": "none", "kid": "rsa-1"}, claims(iss, nil), nil), ReasonAlgorithm},
		{"alg None", rawToken(t, map[string]any{"alg": "None", "kid": "rsa-1"}, claims(iss, nil), nil), ReasonAlgorithm},
		{"HS256 signed with the public key", string(hsWithPublic), ReasonAlgorithm},
		{"kid of another key type", esAsRSA, ReasonKeyType},
		{"not allowed: ES384", rawToken(t, map[string]any{"alg": "ES384", "kid": "ec-1"}, claims(iss, nil), make([]byte, 96)), ReasonAlgorithm},
		{"alg twice", dupAlg(t, parts[1], parts[2]), ReasonMalformed},
		{"ALG in capitals", rawToken(t, map[string]any{"ALG": "RS256", "kid": "rsa-1"}, claims(iss, nil), make([]byte, 256)), ReasonAlgorithm},
		{"kid not a string", rawToken(t, map[string]any{"alg": "RS256", "kid": 7}, claims(iss, nil), make([]byte, 256)), ReasonMalformed},
		{"crit header", rawToken(t, map[string]any{"alg": "RS256", "kid": "rsa-1", "crit": []string{"exp"}}, claims(iss, nil), make([]byte, 256)), ReasonCrit},
		{"tampered claims", tampered, ReasonSignature},
		{"signature spelled with pad bits set", respelled, ReasonMalformed},
		{"signed by an unpublished key", oauthtest.Mint(t, oauthtest.RSA(t, 1, "rsa-1"), claims(iss, nil)), ReasonSignature},
		{"expired", oauthtest.Mint(t, rs, claims(iss, map[string]any{"exp": now.Unix() - 60})), ReasonExpired},
		{"no exp", oauthtest.Mint(t, rs, claims(iss, map[string]any{"exp": nil})), ReasonNoExp},
		{"exp not a number", oauthtest.Mint(t, rs, claims(iss, map[string]any{"exp": "tomorrow"})), ReasonClaims},
		{"not yet valid", oauthtest.Mint(t, rs, claims(iss, map[string]any{"nbf": now.Unix() + 120})), ReasonNotYetValid},
		{"issued in the future", oauthtest.Mint(t, rs, claims(iss, map[string]any{"iat": now.Unix() + 120})), ReasonIssuedFuture},
		{"wrong audience", oauthtest.Mint(t, rs, claims(iss, map[string]any{"aud": "https://other.example.test"})), ReasonAudience},
		{"no audience", oauthtest.Mint(t, rs, claims(iss, map[string]any{"aud": nil})), ReasonAudience},
		{"wrong issuer", oauthtest.Mint(t, rs, claims("https://evil.example.test", nil)), ReasonIssuer},
		{"opaque without introspection", "2YotnFZFEjr1zCsicMWpAA", ReasonOpaque},
		{"too large", "Bearer " + strings.Repeat("a", MaxTokenSize+1), ReasonTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := is.Verify(context.Background(), c.token, time.Now())
			if res.Valid != (c.reason == "") || res.Reason != c.reason {
				t.Fatalf("Verify = valid %v reason %q; want reason %q", res.Valid, res.Reason, c.reason)
			}
			if res.Valid {
				if res.Claims["sub"] != "svc-42" || res.Claims["scope"] != "hooks:write" {
					t.Fatalf("claims = %v", res.Claims)
				}
			} else if res.Claims != nil {
				t.Fatalf("a refused token has claims %v", res.Claims)
			}
		})
	}
}

// dupAlg is a token whose header names alg twice (RS256, then none), with the given claims
// and signature segments.
func dupAlg(t *testing.T, claimsSeg, sigSeg string) string {
	t.Helper()
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"rsa-1","alg":"none"}`)) + "." + claimsSeg + "." + sigSeg
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func kidHeader(kid string) jws.Headers {
	h := jws.NewHeaders()
	_ = h.Set(jws.KeyIDKey, kid)
	return h
}

// An HMAC algorithm is checked with the configured shared secret only: a token HS256-signed
// with the published RSA key's PEM, naming its kid, fails.
func TestHMACOnlyWithSharedSecret(t *testing.T) {
	rs := oauthtest.RSA(t, 0, "rsa-1")
	p := oauthtest.NewIDP(t, rs)
	secret := []byte("0123456789abcdef0123456789abcdef")
	is := startIssuer(t, p, Config{Algorithms: []string{"RS256", "HS256"}, HMACSecrets: [][]byte{[]byte("old-secret-old-secret-old-secret"), secret}})
	iss := p.Issuer()
	good, err := jws.Sign(mustJSON(claims(iss, nil)), jws.WithKey(jwa.HS256(), secret))
	if err != nil {
		t.Fatal(err)
	}
	if r := is.Verify(context.Background(), string(good), time.Now()); !r.Valid {
		t.Fatalf("HS256 with the shared secret: %q", r.Reason)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(oauthtest.RSA(t, 0, "").Key.Public())
	for _, k := range [][]byte{pubDER, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})} {
		forged, err := jws.Sign(mustJSON(claims(iss, nil)), jws.WithKey(jwa.HS256(), k, jws.WithProtectedHeaders(kidHeader("rsa-1"))))
		if err != nil {
			t.Fatal(err)
		}
		if r := is.Verify(context.Background(), string(forged), time.Now()); r.Valid || r.Reason != ReasonSignature {
			t.Fatalf("HS256 signed with the public key = %+v, want %q", r, ReasonSignature)
		}
	}
}

func TestConfigRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"none", Config{Name: "a", Issuer: "https://idp.test", Algorithms: []string{"none"}}, "never accepted"},
		{"HS256 without secret", Config{Name: "a", Issuer: "https://idp.test", Algorithms: []string{"HS256"}}, "needs a shared secret"},
		{"short secret", Config{Name: "a", Issuer: "https://idp.test", Algorithms: []string{"HS256"}, HMACSecrets: [][]byte{[]byte("short")}}, "at least 32"},
		{"plain http", Config{Name: "a", Issuer: "http://idp.example.com"}, "loopback host only"},
		{"introspection without client", Config{Name: "a", IntrospectionURL: "https://idp.test/i"}, "client_id"},
		{"nothing", Config{Name: "a"}, "set issuer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := newIssuer(c.cfg, nil, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("newIssuer = %v, want an error with %q", err, c.want)
			}
		})
	}
}

// Rotation: a token with a new kid makes the refresher fetch once, early; a removed key's
// tokens then fail; a burst of unknown kids costs one fetch per MinRefresh.
func TestKeyRotation(t *testing.T) {
	k1, k2 := oauthtest.RSA(t, 0, "k1"), oauthtest.RSA(t, 1, "k2")
	p := oauthtest.NewIDP(t, k1)
	is := startIssuer(t, p, Config{MinRefresh: time.Second})
	iss := p.Issuer()
	ctx := context.Background()
	if r := is.Verify(ctx, oauthtest.Mint(t, k1, claims(iss, nil)), time.Now()); !r.Valid {
		t.Fatalf("k1 before rotation: %q", r.Reason)
	}
	time.Sleep(1100 * time.Millisecond) // past MinRefresh since the start
	p.SetKeys(t, k2)
	before := p.JWKSHits.Load()
	if r := is.Verify(ctx, oauthtest.Mint(t, k2, claims(iss, nil)), time.Now()); !r.Valid {
		t.Fatalf("k2 after rotation: %q", r.Reason)
	}
	if got := p.JWKSHits.Load() - before; got != 1 {
		t.Fatalf("the new kid caused %d fetches, want 1", got)
	}
	if r := is.Verify(ctx, oauthtest.Mint(t, k1, claims(iss, nil)), time.Now()); r.Valid || r.Reason != ReasonUnknownKey {
		t.Fatalf("k1 after it was removed = %+v, want %q", r, ReasonUnknownKey)
	}
	var bogus []string // minted first: the burst must fit in MinRefresh
	for i := range 50 {
		bogus = append(bogus, oauthtest.Mint(t, oauthtest.Signer{Kid: fmt.Sprintf("bogus-%d", i), Alg: jwa.RS256(), Key: oauthtest.RSA(t, 0, "").Key}, claims(iss, nil)))
	}
	before = p.JWKSHits.Load()
	for _, tok := range bogus {
		if r := is.Verify(ctx, tok, time.Now()); r.Valid {
			t.Fatal("a token with an unknown kid was accepted")
		}
	}
	if got := p.JWKSHits.Load() - before; got > 1 {
		t.Fatalf("50 unknown kids within MinRefresh caused %d fetches, want at most 1", got)
	}
	if st := is.Stats(); st.Keys != 1 || st.Stale || st.Refreshes < 2 {
		t.Fatalf("stats = %+v", st)
	}
}

// Issuer down: the last good key set serves through MaxStale past CacheTTL, then every token
// fails; when the issuer is back, tokens pass again.
func TestIssuerDown(t *testing.T) {
	k1 := oauthtest.RSA(t, 0, "k1")
	p := oauthtest.NewIDP(t, k1)
	is := startIssuer(t, p, Config{CacheTTL: 200 * time.Millisecond, MaxStale: 400 * time.Millisecond})
	tok := oauthtest.Mint(t, k1, claims(p.Issuer(), nil))
	fetched := is.Stats().LastRefresh
	p.SetDown(true)
	testutil.WaitUntil(t, 5*time.Second, "a failed refresh", func() bool { return is.Stats().Failures > 0 })
	if time.Since(fetched) < 600*time.Millisecond {
		if r := is.Verify(context.Background(), tok, time.Now()); !r.Valid {
			t.Fatalf("within staleness, with the issuer down: %q", r.Reason)
		}
	}
	time.Sleep(time.Until(fetched.Add(650 * time.Millisecond)))
	if r := is.Verify(context.Background(), tok, time.Now()); r.Valid || r.Reason != ReasonKeysStale {
		t.Fatalf("past staleness = %+v, want %q", r, ReasonKeysStale)
	}
	if st := is.Stats(); !st.Stale || st.LastError == "" || st.Keys != 1 {
		t.Fatalf("stats = %+v", st)
	}
	p.SetDown(false)
	testutil.WaitUntil(t, 5*time.Second, "recovery", func() bool { return !is.Stats().Stale })
	if r := is.Verify(context.Background(), tok, time.Now()); !r.Valid {
		t.Fatalf("after recovery: %q", r.Reason)
	}
}

// Discovery must name the configured issuer; and a request before any key set waits for the
// first fetch, then fails closed when there is none.
func TestDiscoveryIssuerMismatch(t *testing.T) {
	k1 := oauthtest.RSA(t, 0, "k1")
	p := oauthtest.NewIDP(t, k1)
	p.SetDiscoveryIssuer("https://impostor.example.test")
	is := startIssuer(t, p, Config{Timeout: 300 * time.Millisecond})
	if r := is.Verify(context.Background(), oauthtest.Mint(t, k1, claims(p.Issuer(), nil)), time.Now()); r.Valid || r.Reason != ReasonKeysStale {
		t.Fatalf("Verify = %+v, want %q", r, ReasonKeysStale)
	}
	if st := is.Stats(); !strings.Contains(st.LastError, "not the configured") {
		t.Fatalf("last error = %q", st.LastError)
	}
}

// jwks_url without discovery; bounded documents and key counts.
func TestKeySetBounds(t *testing.T) {
	k1, k2 := oauthtest.RSA(t, 0, "k1"), oauthtest.RSA(t, 1, "k2")
	p := oauthtest.NewIDP(t, k1, k2)
	is := startIssuer(t, p, Config{JWKSURL: p.Server.URL + "/keys", MaxKeys: 1})
	if st := is.Stats(); st.Keys != 0 || !strings.Contains(st.LastError, "max_keys") {
		t.Fatalf("two keys with max_keys = 1: %+v", st)
	}
	p.SetKeySet([]byte(`{"keys":[` + strings.Repeat(" ", maxDocument) + `]}`))
	is2 := startIssuer(t, p, Config{JWKSURL: p.Server.URL + "/keys"})
	if st := is2.Stats(); st.Keys != 0 || !strings.Contains(st.LastError, "larger than") {
		t.Fatalf("oversized key set: %+v", st)
	}
}

// Keys a resource server must not use are left out when the set is loaded.
func TestKeySetFiltering(t *testing.T) {
	good := oauthtest.PublicSet(t, oauthtest.RSA(t, 0, "good"))
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	_ = json.Unmarshal(good, &doc)
	g := doc.Keys[0]
	with := func(k, v string) map[string]any {
		m := map[string]any{}
		for a, b := range g {
			m[a] = b
		}
		m["kid"] = k + "=" + v
		m[k] = v
		return m
	}
	doc.Keys = append(doc.Keys, with("use", "enc"), with("alg", "HS256"), with("d", "AQAB"), with("kty", "oct"),
		map[string]any{"kty": "RSA", "kid": "small", "n": base64.RawURLEncoding.EncodeToString(make([]byte, 128)), "e": "AQAB"},
		map[string]any{"kty": "EC", "kid": "off-curve", "crv": "P-256", "x": base64.RawURLEncoding.EncodeToString(make([]byte, 32)), "y": base64.RawURLEncoding.EncodeToString(make([]byte, 32))})
	keys, skipped, err := parseKeySet(mustJSON(doc), 10)
	if err != nil || len(keys) != 1 || keys[0].kid != "good" || skipped != 6 {
		t.Fatalf("parseKeySet = %d keys (%v), %d skipped, %v; want only \"good\"", len(keys), keys, skipped, err)
	}
}

func TestIntrospection(t *testing.T) {
	p := oauthtest.NewIDP(t)
	exp := time.Now().Add(time.Hour).Unix()
	var gotAuth, gotToken string
	p.SetIntrospect(func(r *http.Request) (int, string) {
		_ = r.ParseForm()
		gotToken = r.PostForm.Get("token")
		u, pw, _ := r.BasicAuth()
		gotAuth = u + ":" + pw
		switch gotToken {
		case "active-token":
			return 200, fmt.Sprintf(`{"active":true,"sub":"svc-42","scope":"hooks:write","aud":%q,"exp":%d}`, audience, exp)
		case "other-aud":
			return 200, fmt.Sprintf(`{"active":true,"aud":"someone-else","exp":%d}`, exp)
		case "far-exp":
			return 200, fmt.Sprintf(`{"active":true,"aud":%q,"exp":1e10}`, audience)
		case "broken":
			return 500, `{"error":"server_error"}`
		}
		return 200, `{"active":false}`
	})
	is := startIssuer(t, p, Config{JWKSURL: "", Issuer: "", IntrospectionURL: p.Server.URL + "/introspect",
		ClientID: "gateway", ClientSecret: []byte("s3cr:et"), Audiences: []string{audience}})
	ctx := context.Background()
	check := func(tok, reason string, hits int64) {
		t.Helper()
		r := is.Verify(ctx, "Bearer "+tok, time.Now())
		if r.Valid != (reason == "") || r.Reason != reason {
			t.Fatalf("%s: %+v, want reason %q", tok, r, reason)
		}
		if got := p.IntroHits.Load(); got != hits {
			t.Fatalf("%s: %d introspection calls so far, want %d", tok, got, hits)
		}
	}
	check("active-token", "", 1)
	if gotToken != "active-token" || gotAuth != "gateway:s3cr%3Aet" {
		t.Fatalf("the endpoint got token %q, credentials %q", gotToken, gotAuth)
	}
	check("active-token", "", 1) // cached for its lifetime
	check("revoked-token", ReasonInactive, 2)
	check("revoked-token", ReasonInactive, 2) // negative answers cached briefly
	check("other-aud", ReasonAudience, 3)
	check("broken", ReasonIntrospectFail, 4)
	check("broken", ReasonIntrospectFail, 5) // errors are not cached
	// A JWT-shaped token is introspected too when no key set is configured.
	check("a.b.c", ReasonInactive, 6)
	// An exp far ahead (past int64 nanoseconds) is cached for cache_ttl, not taken as past.
	check("far-exp", "", 7)
	check("far-exp", "", 7)
	if st := is.Stats(); st.Introspections != 7 || st.IntrospectionErrors != 2 || st.Stale {
		t.Fatalf("stats = %+v", st)
	}
	// The endpoint answering an active token whose exp has passed since: refused from cache.
	r := is.Verify(ctx, "active-token", time.Unix(exp+60, 0))
	if r.Valid || r.Reason != ReasonExpired {
		t.Fatalf("cached answer after exp = %+v", r)
	}
}

func TestNegativeCacheExpires(t *testing.T) {
	p := oauthtest.NewIDP(t)
	p.SetIntrospect(func(*http.Request) (int, string) { return 200, `{"active":false}` })
	is := startIssuer(t, p, Config{IntrospectionURL: p.Server.URL + "/introspect", ClientID: "c", ClientSecret: []byte("s"), NegativeTTL: 50 * time.Millisecond})
	is.Verify(context.Background(), "tok", time.Now())
	time.Sleep(80 * time.Millisecond)
	is.Verify(context.Background(), "tok", time.Now())
	if got := p.IntroHits.Load(); got != 2 {
		t.Fatalf("%d calls, want 2: the negative answer should have expired", got)
	}
}

// A reload with an unchanged issuer shares it (keys kept, no fetch); a changed one is new.
func TestSetReuse(t *testing.T) {
	k1 := oauthtest.RSA(t, 0, "k1")
	p := oauthtest.NewIDP(t, k1)
	cfg := Config{Name: "idp", Issuer: p.Issuer(), Audiences: []string{audience}}
	s1, err := NewSet([]Config{cfg}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitUntil(t, 5*time.Second, "keys", func() bool { return s1.Issuer("idp").Stats().Keys == 1 })
	hits := p.JWKSHits.Load()
	s2, err := NewSet([]Config{cfg}, s1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s1.Close()
	if s2.Issuer("idp") != s1.Issuer("idp") || p.JWKSHits.Load() != hits {
		t.Fatal("an unchanged issuer was not shared across the reload")
	}
	if r, err := s2.Verify(context.Background(), "idp", oauthtest.Mint(t, k1, claims(p.Issuer(), nil)), time.Now()); err != nil || !r.Valid {
		t.Fatalf("after the reload: %+v %v", r, err)
	}
	cfg.Leeway = time.Minute
	s3, err := NewSet([]Config{cfg}, s2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s3.Issuer("idp") == s2.Issuer("idp") {
		t.Fatal("a changed issuer was shared")
	}
	s2.Close()
	s3.Close()
	if _, err := s3.Verify(context.Background(), "nope", "x", time.Now()); err == nil {
		t.Fatal("an unknown issuer name is not an error")
	}
}

// Sets close in any order: a set replaced by a newer one may still serve a request after
// the newer one closed, so an issuer they share stops with the last of them, not the newer.
func TestSetsCloseInAnyOrder(t *testing.T) {
	p := oauthtest.NewIDP(t, oauthtest.RSA(t, 0, "k1"))
	cfg := Config{Name: "idp", Issuer: p.Issuer(), Audiences: []string{audience}}
	s1, err := NewSet([]Config{cfg}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := NewSet([]Config{cfg}, s1, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	is := s1.Issuer("idp")
	if s2.Issuer("idp") != is {
		t.Fatal("an unchanged issuer was not shared")
	}
	stopped := func() bool {
		select {
		case <-is.done:
			return true
		default:
			return false
		}
	}
	s2.Close() // the newer set first
	if stopped() {
		t.Fatal("the issuer stopped while the older set still holds it")
	}
	s1.Close()
	testutil.WaitUntil(t, 5*time.Second, "the issuer did not stop once no set held it", stopped)
}

// An issuer that never answers: the first token waits for the first fetch (bounded by
// Timeout); of the next ones, at most one asks for (and waits for) another fetch within
// MinRefresh, the others are refused at once.
func TestIssuerUnreachableAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // accept and hold connections without answering
		var held []net.Conn
		for {
			c, err := ln.Accept()
			if err != nil {
				for _, c := range held {
					c.Close()
				}
				return
			}
			held = append(held, c)
		}
	}()
	k := oauthtest.RSA(t, 0, "k1")
	is, err := newIssuer(Config{Name: "down", Issuer: "http://" + ln.Addr().String(), Audiences: []string{audience}, Timeout: 300 * time.Millisecond}, quiet, nil)
	if err != nil {
		t.Fatal(err)
	}
	is.Start()
	t.Cleanup(is.Close)
	tok := oauthtest.Mint(t, k, claims("http://"+ln.Addr().String(), nil))
	start := time.Now()
	if r := is.Verify(context.Background(), tok, time.Now()); r.Reason != ReasonKeysStale {
		t.Fatalf("first token: %+v", r)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the first token waited %v, past the fetch timeout", d)
	}
	testutil.WaitUntil(t, 5*time.Second, "the failed first fetch", func() bool { return is.Stats().Failures > 0 })
	slow := 0
	for range 20 {
		start = time.Now()
		if r := is.Verify(context.Background(), tok, time.Now()); r.Reason != ReasonKeysStale {
			t.Fatalf("later token: %+v", r)
		}
		if time.Since(start) > 100*time.Millisecond {
			slow++
		}
	}
	if slow > 1 {
		t.Fatalf("%d of 20 tokens waited for a fetch; at most one may ask for one per MinRefresh", slow)
	}
}

// A flood of made-up opaque tokens makes at most maxIntrospectInFlight concurrent calls.
func TestIntrospectionConcurrencyBound(t *testing.T) {
	p := oauthtest.NewIDP(t)
	var mu sync.Mutex
	cur, peak := 0, 0
	release := make(chan struct{})
	p.SetIntrospect(func(*http.Request) (int, string) {
		mu.Lock()
		cur++
		peak = max(peak, cur)
		mu.Unlock()
		<-release
		mu.Lock()
		cur--
		mu.Unlock()
		return 200, `{"active":false}`
	})
	is := startIssuer(t, p, Config{IntrospectionURL: p.Server.URL + "/introspect", ClientID: "c", ClientSecret: []byte("s")})
	var wg sync.WaitGroup
	for i := range 3 * maxIntrospectInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			is.Verify(context.Background(), fmt.Sprintf("made-up-%d", i), time.Now())
		}()
	}
	testutil.WaitUntil(t, 5*time.Second, "calls in flight", func() bool { return p.IntroHits.Load() >= maxIntrospectInFlight })
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if peak > maxIntrospectInFlight || peak == 0 {
		t.Fatalf("peak concurrent introspection calls %d, bound %d", peak, maxIntrospectInFlight)
	}
}

// FuzzVerify: whatever is presented, Verify does not panic, and accepts nothing but the one
// genuine token (bare, or in a Bearer header).
func FuzzVerify(f *testing.F) {
	k := oauthtest.RSA(f, 0, "k1")
	p := oauthtest.NewIDP(f, k)
	is, err := newIssuer(Config{Name: "fuzz", Issuer: p.Issuer(), Audiences: []string{audience}, Timeout: 200 * time.Millisecond}, quiet, nil)
	if err != nil {
		f.Fatal(err)
	}
	is.Start()
	f.Cleanup(is.Close)
	genuine := oauthtest.Mint(f, k, claims(p.Issuer(), map[string]any{"exp": time.Now().Add(24 * time.Hour).Unix()}))
	if r := is.Verify(context.Background(), genuine, time.Now()); !r.Valid {
		f.Fatalf("the genuine token: %q", r.Reason)
	}
	f.Add("Bearer " + genuine)
	f.Add(genuine[:len(genuine)-2] + "\n" + genuine[len(genuine)-2:])
	f.Add(rawTokenF(map[string]any{"alg": "none", "kid": "k1"}, claims(p.Issuer(), nil)))
	f.Fuzz(func(t *testing.T, tok string) {
		r := is.Verify(context.Background(), tok, time.Now())
		if !r.Valid {
			return
		}
		if bare, _ := bearer(tok); bare != genuine {
			t.Fatalf("accepted %q", tok)
		}
	})
}

func rawTokenF(hdr, cl map[string]any) string {
	e := base64.RawURLEncoding
	return e.EncodeToString(mustJSON(hdr)) + "." + e.EncodeToString(mustJSON(cl)) + "."
}

// TestVerifyHammer: goroutines verify tokens of a rotating key set, with unknown kids asking
// for fetches, released together; run under -race in CI. Every answer is one of the two a
// token can get while its key comes and goes.
func TestVerifyHammer(t *testing.T) {
	k1, k2 := oauthtest.RSA(t, 0, "k1"), oauthtest.EC(t, "k2")
	p := oauthtest.NewIDP(t, k1, k2)
	is := startIssuer(t, p, Config{MinRefresh: time.Millisecond, CacheTTL: 20 * time.Millisecond, Algorithms: []string{"RS256", "ES256"}})
	toks := []string{oauthtest.Mint(t, k1, claims(p.Issuer(), nil)), oauthtest.Mint(t, k2, claims(p.Issuer(), nil)),
		oauthtest.Mint(t, oauthtest.Signer{Kid: "nope", Alg: jwa.RS256(), Key: k1.Key}, claims(p.Issuer(), nil))}
	const P, N = 8, 150
	start := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, P*N)
	for g := range P {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range N {
				r := is.Verify(context.Background(), toks[(g+i)%len(toks)], time.Now())
				if !r.Valid && r.Reason != ReasonUnknownKey && r.Reason != ReasonKeysStale {
					errs <- r.Reason
				}
				if (g+i)%len(toks) == 2 && r.Valid {
					errs <- "a token of an unknown kid was accepted"
				}
			}
		}()
	}
	stop := make(chan struct{})
	go func() { // rotate while they verify
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i%2 == 0 {
				p.SetKeys(t, k1)
			} else {
				p.SetKeys(t, k1, k2)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	close(start)
	wg.Wait()
	close(stop)
	close(errs)
	for e := range errs {
		t.Fatalf("unexpected answer: %s", e)
	}
}

// TestTokenWithoutKid: a token that names no kid is checked against the one key of the set
// that fits its alg; when several fit (OpenID Connect requires a kid then), it is refused
// without a signature check, where trying each would let a made-up token cost one check per
// key of the set.
func TestTokenWithoutKid(t *testing.T) {
	r0, r1, ec := oauthtest.RSA(t, 0, "r0"), oauthtest.RSA(t, 1, "r1"), oauthtest.EC(t, "e")
	p := oauthtest.NewIDP(t, r0, r1, ec)
	is := startIssuer(t, p, Config{Issuer: p.Issuer(), Audiences: []string{audience}})
	ctx := context.Background()
	unnamed := func(s oauthtest.Signer) string {
		s.Kid = ""
		return oauthtest.Mint(t, s, claims(p.Issuer(), nil))
	}
	if r := is.Verify(ctx, unnamed(ec), time.Now()); !r.Valid {
		t.Errorf("ES256 without a kid, one EC key in the set: %+v, want valid", r)
	}
	for _, s := range []oauthtest.Signer{r0, r1} {
		if r := is.Verify(ctx, unnamed(s), time.Now()); r.Valid || r.Reason != ReasonNoKid {
			t.Errorf("RS256 without a kid, two RSA keys in the set: %+v, want %q", r, ReasonNoKid)
		}
	}
	if r := is.Verify(ctx, oauthtest.Mint(t, r1, claims(p.Issuer(), nil)), time.Now()); !r.Valid {
		t.Errorf("RS256 naming its kid: %+v, want valid", r)
	}
}

// TestTokenWithEmptyKid: a token whose kid is "" names no key: with several keys of the set
// without a kid fitting its alg, it is refused as one without a kid is, rather than checked
// against each of them (up to max_keys signature checks for a made-up token).
func TestTokenWithEmptyKid(t *testing.T) {
	r0, r1 := oauthtest.RSA(t, 0, ""), oauthtest.RSA(t, 1, "")
	p := oauthtest.NewIDP(t, r0, r1)
	is := startIssuer(t, p, Config{})
	forged := rawToken(t, map[string]any{"alg": "RS256", "kid": ""}, claims(p.Issuer(), nil), make([]byte, 256))
	if r := is.Verify(context.Background(), forged, time.Now()); r.Valid || r.Reason != ReasonNoKid {
		t.Errorf("kid \"\", two RSA keys without a kid in the set: %+v, want %q", r, ReasonNoKid)
	}
	p.SetKeys(t, r1)
	testutil.WaitUntil(t, 5*time.Second, "the one-key set", func() bool {
		select {
		case is.kick <- struct{}{}:
		default:
		}
		time.Sleep(10 * time.Millisecond)
		return is.Stats().Keys == 1
	})
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, "")
	signed, err := jws.Sign(mustJSON(claims(p.Issuer(), nil)), jws.WithKey(jwa.RS256(), r1.Key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		t.Fatal(err)
	}
	if r := is.Verify(context.Background(), string(signed), time.Now()); !r.Valid {
		t.Errorf("kid \"\", the one key of the set: %+v, want valid", r)
	}
}
