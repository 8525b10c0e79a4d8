package gateway

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/oauth/oauthtest"
)

const oauthE2EConfig = `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[policies]
dir = "policies"
watch = false
evaluator = "%[3]s"

[log]
decisions = "{{DIR}}/decisions.log"

[[oauth]]
name = "oauth"
issuer = "%[2]s"
audiences = ["https://hooks.example.test"]

[[route]]
name = "events"
path = "/hooks/events"
methods = ["POST"]
upstream = "%[1]s"
policy = "routes.providers.oauth"
`

// TestE2EOAuth runs the ready policy routes.providers.oauth through a real gateway, with the
// production builtin, an OIDC provider on loopback (discovery and JWKS), tokens minted by
// jwx and a real upstream, on both evaluators: a verified token with the scope is
// forwarded and names its sender in the decision log; a refused one gets 401 (403 without
// the scope) and reaches nothing; a rotated key is picked up on its first token; a reload
// keeps the issuer's keys; /-/status and /metrics show the issuer.
func TestE2EOAuth(t *testing.T) {
	for _, evaluator := range []string{"auto", "opa"} {
		t.Run(evaluator, func(t *testing.T) { testE2EOAuth(t, evaluator) })
	}
}

func testE2EOAuth(t *testing.T, evaluator string) {
	k1, k2 := oauthtest.RSA(t, 0, "k1"), oauthtest.RSA(t, 1, "k2")
	idp := oauthtest.NewIDP(t, k1)
	files := providerPolicyFiles(t)
	files["policies/hookwall/config/data.json"] = `{"oauth": {"scope": "hooks:write"}}`
	up := startUpstream(t)
	e := startEnv(t, fmt.Sprintf(oauthE2EConfig, up.URL(), idp.Issuer(), evaluator), files, Options{})
	wantEval := map[string]string{"auto": "compiled", "opa": "opa"}[evaluator]
	st := adminStatus(t, e)
	if len(st.Routes) != 1 || st.Routes[0].Evaluator != wantEval {
		t.Fatalf("routes = %+v, want the %s evaluator", st.Routes, wantEval)
	}

	iss, aud := idp.Issuer(), "https://hooks.example.test"
	claims := func(extra map[string]any) map[string]any {
		now := time.Now().Unix()
		c := map[string]any{"iss": iss, "aud": aud, "sub": "svc-42", "scope": "openid hooks:write", "exp": now + 300, "iat": now}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	body := []byte(`{"event":"invoice.paid"}`)
	send := func(auth string) resp {
		h := map[string]string{"Content-Type": "application/json"}
		if auth != "" {
			h["Authorization"] = auth
		}
		return e.do("POST", "/hooks/events", body, h)
	}
	good := oauthtest.Mint(t, k1, claims(nil))
	if r := send("Bearer " + good); r.Status != 200 || r.Body != "upstream ok" {
		t.Fatalf("a valid token: %d %s", r.Status, r.Body)
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("upstream got %d requests, want 1", n)
	}
	for _, c := range []struct {
		name, auth string
		status     int
		reason     string
	}{
		{"no token", "", 401, "missing bearer token"},
		{"basic", "Basic dTpw", 401, "authorization scheme is not Bearer"},
		{"expired", "Bearer " + oauthtest.Mint(t, k1, claims(map[string]any{"exp": time.Now().Unix() - 120})), 401, "token expired"},
		{"wrong audience", "Bearer " + oauthtest.Mint(t, k1, claims(map[string]any{"aud": "https://other.test"})), 401, "wrong audience"},
		{"wrong issuer", "Bearer " + oauthtest.Mint(t, k1, claims(map[string]any{"iss": "https://evil.test"})), 401, "wrong issuer"},
		{"alg none", "Bearer " + unsigned(t, claims(nil)), 401, "algorithm not allowed"},
		{"no scope", "Bearer " + oauthtest.Mint(t, k1, claims(map[string]any{"scope": "openid"})), 403, "token lacks scope hooks:write"},
	} {
		r := send(c.auth)
		if r.Status != c.status || !strings.Contains(r.Body, c.reason) {
			t.Errorf("%s: %d %s; want %d with %q", c.name, r.Status, r.Body, c.status, c.reason)
		}
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("refused tokens reached the upstream: %d requests", n)
	}

	// Rotation: the issuer now publishes k2 only.
	idp.SetKeys(t, k2)
	if r := send("Bearer " + oauthtest.Mint(t, k2, claims(nil))); r.Status != 200 {
		t.Fatalf("a token of the rotated key: %d %s", r.Status, r.Body)
	}
	if r := send("Bearer " + good); r.Status != 401 || !strings.Contains(r.Body, "no key for the token's kid") {
		t.Fatalf("a token of the removed key: %d %s", r.Status, r.Body)
	}

	// A reload with the issuer unchanged keeps its keys and fetches nothing.
	hits := idp.JWKSHits.Load()
	if code, ans := e.adminReload(); code != 200 {
		t.Fatalf("reload: %d %v", code, ans)
	}
	if r := send("Bearer " + oauthtest.Mint(t, k2, claims(nil))); r.Status != 200 || idp.JWKSHits.Load() != hits {
		t.Fatalf("after a reload: %d %s, %d key set fetches (want none)", r.Status, r.Body, idp.JWKSHits.Load()-hits)
	}

	// A reload that changes the issuer builds a new one: it fetches the keys, and the new
	// audience applies.
	cfgPath := filepath.Join(e.dir, "gateway.toml")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(raw), `audiences = ["https://hooks.example.test"]`, `audiences = ["https://hooks2.example.test"]`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	hits = idp.JWKSHits.Load()
	if code, ans := e.adminReload(); code != 200 {
		t.Fatalf("reload with a changed issuer: %d %v", code, ans)
	}
	if r := send("Bearer " + oauthtest.Mint(t, k2, claims(map[string]any{"aud": "https://hooks2.example.test"}))); r.Status != 200 {
		t.Fatalf("the new audience after the reload: %d %s", r.Status, r.Body)
	}
	if r := send("Bearer " + oauthtest.Mint(t, k2, claims(nil))); r.Status != 401 || !strings.Contains(r.Body, "wrong audience") {
		t.Fatalf("the old audience after the reload: %d %s", r.Status, r.Body)
	}
	if idp.JWKSHits.Load() == hits {
		t.Fatal("the changed issuer fetched no keys")
	}

	st = adminStatus(t, e)
	if len(st.OAuth) != 1 || st.OAuth[0].Name != "oauth" || st.OAuth[0].Keys != 1 || st.OAuth[0].Refreshes < 1 || st.OAuth[0].Stale || st.OAuth[0].LastRefresh.IsZero() {
		t.Fatalf("/-/status oauth = %+v", st.OAuth)
	}
	mr, err := http.Get(e.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := io.ReadAll(mr.Body)
	mr.Body.Close()
	if !strings.Contains(string(mb), `hookwall_oauth_keys{issuer="oauth"} 1`) || !strings.Contains(string(mb), `hookwall_oauth_keys_stale{issuer="oauth"} 0`) {
		t.Fatalf("/metrics lacks the issuer's series")
	}

	e.stop() // flushes the decision log
	log, err := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"sender":"oauth:svc-42"`) {
		t.Fatalf("the decision log names no sender:\n%s", log)
	}
	if strings.Contains(string(log), good[:40]) || strings.Contains(string(log), strings.Split(good, ".")[2]) {
		t.Fatal("a token reached the decision log")
	}
}

// unsigned is an "alg": "none" token naming the issuer's kid.
func unsigned(t *testing.T, claims map[string]any) string {
	h, _ := json.Marshal(map[string]any{"alg": "none", "kid": "k1"})
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "."
}

type adminStatusDoc struct {
	Routes []routeStatus `json:"routes"`
	OAuth  []struct {
		Name        string    `json:"name"`
		Keys        int       `json:"keys"`
		LastRefresh time.Time `json:"last_refresh"`
		Refreshes   uint64    `json:"refreshes"`
		Stale       bool      `json:"stale"`
	} `json:"oauth"`
}

func adminStatus(t *testing.T, e *env) adminStatusDoc {
	t.Helper()
	r, err := http.Get(e.admin + "/-/status")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var doc adminStatusDoc
	if err := json.NewDecoder(r.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// The status page lists the [[oauth]] issuers with their key count and state.
func TestStatusPageShowsOAuthIssuers(t *testing.T) {
	bin := chromium(t)
	idp := oauthtest.NewIDP(t, oauthtest.RSA(t, 0, "k1"))
	cfg := strings.Replace(fmt.Sprintf(oauthE2EConfig, startUpstream(t).URL(), idp.Issuer(), "auto"), `name = "oauth"`, `name = "corp-idp"`, 1)
	files := providerPolicyFiles(t)
	files["policies/hookwall/config/data.json"] = `{"oauth": {"issuer": "corp-idp"}}`
	e := startEnv(t, cfg, files, Options{})
	deadline := time.Now().Add(5 * time.Second)
	for st := adminStatus(t, e); len(st.OAuth) != 1 || st.OAuth[0].Keys != 1; st = adminStatus(t, e) {
		if time.Now().After(deadline) {
			t.Fatalf("the issuer has no keys: %+v", st.OAuth)
		}
		time.Sleep(10 * time.Millisecond)
	}
	dom := string(runChromium(t, bin, e.admin+"/", "--dump-dom"))
	for _, want := range []string{`id="oauth-s" style="display: block;"`, `<b>corp-idp</b></td><td class="num">1</td>`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}
