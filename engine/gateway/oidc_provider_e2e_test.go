package gateway

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// oidcProviderDir holds the OpenID Provider the test runs (panva/oidc-provider, a certified
// implementation, pinned by package-lock.json): install it with
// `npm ci --prefix engine/gateway/testdata/oidc-provider`.
const oidcProviderDir = "testdata/oidc-provider"

// startOIDCProvider runs the provider with node and returns its issuer URL. Without node or
// the installed package the test is skipped, except under CI=true, where it fails.
func startOIDCProvider(t *testing.T, senderSecret, gatewaySecret string) string {
	t.Helper()
	missing := func(what string) {
		msg := what + "; install with: npm ci --prefix engine/gateway/testdata/oidc-provider"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not installed")
	}
	if _, err := os.Stat(filepath.Join(oidcProviderDir, "node_modules", "oidc-provider", "package.json")); err != nil {
		missing("oidc-provider is not installed")
	}
	cmd := exec.Command(node, "server.mjs")
	cmd.Dir = oidcProviderDir
	cmd.Env = append(os.Environ(), "SENDER_SECRET="+senderSecret, "GATEWAY_SECRET="+gatewaySecret)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testutil.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close() // the provider exits when its stdin closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if iss, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
				ready <- iss
			}
		}
	}()
	select {
	case iss := <-ready:
		return iss
	case <-time.After(30 * time.Second):
		t.Fatalf("the OIDC provider did not start: %s", stderr.String())
	}
	return ""
}

// oidcToken asks the provider for a client_credentials access token for resource.
func oidcToken(t *testing.T, issuer, secret, resource string) string {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "resource": {resource}, "scope": {"hooks:write"}}
	req, _ := http.NewRequest("POST", issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("hooks-sender", secret)
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		Error       string `json:"error_description"`
	}
	if err := json.NewDecoder(r.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token endpoint: %d %v %s", r.StatusCode, err, tok.Error)
	}
	return tok.AccessToken
}

func randomSecret(t *testing.T) string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

const oidcE2EConfig = `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[policies]
dir = "policies"
watch = false

[log]
decisions = "{{DIR}}/decisions.log"

[secrets]
idp_client = {file = "idp.secret"}

[[oauth]]
name = "oidc"
issuer = "%[2]s"
audiences = ["https://hooks.example.test", "https://es.example.test", "https://opaque.example.test"]
introspection_url = "%[2]s/token/introspection"
client_id = "gateway"
client_secret = "idp_client"

[[route]]
name = "events"
path = "/hooks/events"
methods = ["POST"]
upstream = "%[1]s"
policy = "routes.providers.oauth"
`

// TestE2EOIDCProvider runs the gateway against a real OpenID Provider: the issuer is found
// by discovery, its JWT access tokens (RS256 and ES256) verify with its published keys (RSA
// and EC in one set), its opaque tokens go to its introspection endpoint with the gateway's client
// credentials, a token for another resource and a revoked one are refused.
func TestE2EOIDCProvider(t *testing.T) {
	sender, gw := randomSecret(t), randomSecret(t)
	iss := startOIDCProvider(t, sender, gw)
	files := providerPolicyFiles(t)
	files["policies/hookwall/config/data.json"] = `{"oauth": {"issuer": "oidc", "scope": "hooks:write", "sender_claim": "client_id"}}`
	files["idp.secret"] = gw
	up := startUpstream(t)
	e := startEnv(t, fmt.Sprintf(oidcE2EConfig, up.URL(), iss), files, Options{})
	send := func(tok string) resp {
		return e.do("POST", "/hooks/events", []byte(`{"n":1}`), map[string]string{"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
	}

	jwt := oidcToken(t, iss, sender, "https://hooks.example.test")
	if strings.Count(jwt, ".") != 2 {
		t.Fatalf("the provider gave no JWT for the JWT resource")
	}
	if r := send(jwt); r.Status != 200 {
		t.Fatalf("the provider's RS256 JWT: %d %s", r.Status, r.Body)
	}
	es := oidcToken(t, iss, sender, "https://es.example.test")
	if h, _ := base64.RawURLEncoding.DecodeString(strings.Split(es, ".")[0]); !strings.Contains(string(h), `"ES256"`) {
		t.Fatalf("the provider's token for the ES256 resource has header %s", h)
	}
	if r := send(es); r.Status != 200 {
		t.Fatalf("the provider's ES256 JWT: %d %s", r.Status, r.Body)
	}
	opaque := oidcToken(t, iss, sender, "https://opaque.example.test")
	if strings.Contains(opaque, ".") {
		t.Fatalf("the provider gave a JWT for the opaque resource")
	}
	if r := send(opaque); r.Status != 200 {
		t.Fatalf("the provider's opaque token: %d %s", r.Status, r.Body)
	}
	if n := len(up.requests()); n != 3 {
		t.Fatalf("upstream got %d requests, want 3", n)
	}

	other := oidcToken(t, iss, sender, "https://other.example.test")
	if r := send(other); r.Status != 401 || !strings.Contains(r.Body, "wrong audience") {
		t.Fatalf("a token for another resource: %d %s", r.Status, r.Body)
	}
	parts := strings.Split(jwt, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))
	if r := send(forged); r.Status != 401 || !strings.Contains(r.Body, "bad signature") {
		t.Fatalf("a forged signature: %d %s", r.Status, r.Body)
	}
	revoked := oidcToken(t, iss, sender, "https://opaque.example.test")
	form := url.Values{"token": {revoked}}
	req, _ := http.NewRequest("POST", iss+"/token/revocation", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("hooks-sender", sender)
	rr, err := client.Do(req)
	if err != nil || rr.StatusCode != 200 {
		t.Fatalf("revocation: %v %v", rr, err)
	}
	rr.Body.Close()
	if r := send(revoked); r.Status != 401 || !strings.Contains(r.Body, "token inactive") {
		t.Fatalf("a revoked token: %d %s", r.Status, r.Body)
	}
	if n := len(up.requests()); n != 3 {
		t.Fatalf("refused tokens reached the upstream: %d requests", n)
	}
	st := adminStatus(t, e)
	if len(st.OAuth) != 1 || st.OAuth[0].Keys != 2 {
		t.Fatalf("/-/status oauth = %+v, want the provider's two keys", st.OAuth)
	}
	e.stop()
	log, err := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), `"sender":"oidc:hooks-sender"`) || strings.Contains(string(log), opaque) {
		t.Fatalf("decision log: sender missing or a token logged")
	}
}
