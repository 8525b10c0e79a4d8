package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
	"github.com/hookwall/hookwall/engine/tlsconf/tlstest"
)

// secMTLSPolicy admits only the client certificate of "partner-a" and hands what the policy saw
// of the TLS connection to the upstream, so the test can compare it with the real thing.
const secMTLSPolicy = `package routes.mtls

cert := input.request.tls.client_cert

default allow := false

allow if {
	input.request.scheme == "https"
	input.request.tls.version in {"1.2", "1.3"}
	contains(cert.subject, "CN=partner-a")
}

deny contains sprintf("client %s is not allowed", [cert.subject]) if not allow

upstream_headers := {
	"X-Client-Cert-Sha256": cert.sha256,
	"X-Client-Cert-Subject": cert.subject,
	"X-Client-Cert-Issuer": cert.issuer,
	"X-Tls-Version": input.request.tls.version,
} if allow
`

const secMTLSConfig = `
[server]
listen = "127.0.0.1:0"
tls_cert = "server.crt"
tls_key = "server.key"
client_ca = "clients.pem"

[admin]
listen = "127.0.0.1:0"

[log]
decisions = "{{DIR}}/decisions.log"

[[route]]
name = "mtls"
path = "/hooks/mtls"
upstream = "{{UPSTREAM}}"
policy = "routes.mtls"
`

type secMTLSEnv struct {
	*env
	up      *upstream
	url     string
	serverC *tlstest.CA
	clientC *tlstest.CA
}

func secStartMTLS(t *testing.T) *secMTLSEnv {
	t.Helper()
	serverCA := tlstest.NewCA(t, "gateway server CA")
	clientCA := tlstest.NewCA(t, "partner CA")
	srv := serverCA.Server(t, "127.0.0.1")
	up := startUpstream(t)
	e := startEnv(t, strings.ReplaceAll(secMTLSConfig, "{{UPSTREAM}}", up.URL()), map[string]string{
		"policies/routes/mtls.rego": secMTLSPolicy,
		"server.crt":                string(srv.CertPEM),
		"server.key":                string(srv.KeyPEM),
		"clients.pem":               string(clientCA.CertPEM),
	}, Options{})
	pub, _ := e.g.Addrs()
	return &secMTLSEnv{env: e, up: up, url: "https://" + pub.String() + "/hooks/mtls", serverC: serverCA, clientC: clientCA}
}

func (m *secMTLSEnv) client(mod func(*tls.Config)) *http.Client {
	c := &tls.Config{RootCAs: m.serverC.Pool()}
	if mod != nil {
		mod(c)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: c, DisableKeepAlives: true}}
}

func secPost(c *http.Client, url string, body []byte) (int, string, error) {
	r, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b), nil
}

func TestSecurityMTLS(t *testing.T) {
	m := secStartMTLS(t)
	partnerA := m.clientC.Client(t, "partner-a")
	partnerB := m.clientC.Client(t, "partner-b")
	mallory := tlstest.NewCA(t, "partner CA").Client(t, "partner-a") // same names, another key

	t.Run("accepted: certificate reaches the policy", func(t *testing.T) {
		st, body, err := secPost(m.client(func(c *tls.Config) { c.Certificates = []tls.Certificate{partnerA.TLS} }), m.url, []byte(`{}`))
		if err != nil || st != 200 {
			t.Fatalf("status %d body %q err %v, want 200", st, body, err)
		}
		reqs := m.up.requests()
		if len(reqs) != 1 {
			t.Fatalf("upstream got %d requests, want 1", len(reqs))
		}
		h := reqs[0].Header
		sum := sha256.Sum256(partnerA.Cert.Raw)
		if got := h.Get("X-Client-Cert-Sha256"); got != hex.EncodeToString(sum[:]) {
			t.Errorf("policy saw sha256 %q, want %x", got, sum)
		}
		if got := h.Get("X-Client-Cert-Subject"); got != partnerA.Cert.Subject.String() {
			t.Errorf("policy saw subject %q, want %q", got, partnerA.Cert.Subject)
		}
		if got := h.Get("X-Client-Cert-Issuer"); got != m.clientC.Cert.Subject.String() {
			t.Errorf("policy saw issuer %q, want %q", got, m.clientC.Cert.Subject)
		}
		if got := h.Get("X-Tls-Version"); got != "1.3" {
			t.Errorf("policy saw TLS %q, want 1.3", got)
		}
		if got := h.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("X-Forwarded-Proto %q, want https", got)
		}
	})
	t.Run("TLS 1.2 accepted", func(t *testing.T) {
		st, body, err := secPost(m.client(func(c *tls.Config) {
			c.Certificates = []tls.Certificate{partnerA.TLS}
			c.MaxVersion = tls.VersionTLS12
		}), m.url, []byte(`{}`))
		if err != nil || st != 200 {
			t.Fatalf("status %d body %q err %v, want 200", st, body, err)
		}
		if got := m.up.requests()[1].Header.Get("X-Tls-Version"); got != "1.2" {
			t.Errorf("policy saw TLS %q, want 1.2", got)
		}
	})
	t.Run("valid certificate, policy says no", func(t *testing.T) {
		st, body, err := secPost(m.client(func(c *tls.Config) { c.Certificates = []tls.Certificate{partnerB.TLS} }), m.url, []byte(`{}`))
		if err != nil || st != 403 || !strings.Contains(body, "CN=partner-b") {
			t.Fatalf("status %d body %q err %v, want 403 naming partner-b", st, body, err)
		}
	})
	refused := []struct {
		name string
		mod  func(*tls.Config)
		want string
	}{
		{"no client certificate", nil, "certificate required"},
		{"certificate from another CA", func(c *tls.Config) {
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &mallory.TLS, nil }
		}, "unknown certificate authority"},
		{"TLS 1.1 client", func(c *tls.Config) {
			c.Certificates = []tls.Certificate{partnerA.TLS}
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		}, "protocol version not supported"},
	}
	for _, tc := range refused {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			before := len(m.up.requests())
			st, _, err := secPost(m.client(tc.mod), m.url, []byte(`{}`))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("status %d err %v; want the handshake refused with %q", st, err, tc.want)
			}
			if n := len(m.up.requests()) - before; n != 0 {
				t.Fatalf("upstream got %d requests", n)
			}
		})
	}
	t.Run("refused handshakes are logged", func(t *testing.T) {
		n := 0
		// 3 requests answered, 3 handshakes refused: a refused handshake read no request, and
		// its record names none (no method or path of fasthttp's defaults).
		for _, d := range awaitDecisionRecords(t, m.dir+"/decisions.log", 3+len(refused)) {
			if e, _ := d["error"].(string); strings.Contains(e, "tls: ") {
				n++
				if req, _ := d["request"].(map[string]any); req["method"] != "" || req["path"] != "" {
					t.Errorf("the record of a refused handshake names a request: %v", req)
				}
			}
		}
		if n < len(refused) {
			t.Fatalf("%d decision records name a TLS error, want at least %d", n, len(refused))
		}
	})
	t.Run("plain HTTP to the TLS port", func(t *testing.T) {
		st, _, err := secPost(&http.Client{Timeout: 5 * time.Second}, strings.Replace(m.url, "https://", "http://", 1), []byte(`{}`))
		if err == nil && st < 400 {
			t.Fatalf("plain HTTP got status %d", st)
		}
	})
}

// tlsUpstream is a real HTTPS server on loopback with a certificate from ca.
func secTLSUpstream(t *testing.T, ca *tlstest.CA) (*httptest.Server, chan http.Header) {
	t.Helper()
	got := make(chan http.Header, 8)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("X-Seen-Proto", r.Proto)
		h.Set("X-Seen-Tls", map[bool]string{true: "yes", false: "no"}[r.TLS != nil])
		got <- h
		w.WriteHeader(201)
		_, _ = io.WriteString(w, "secure upstream")
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLS}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, got
}

const secAllowAll = `package routes.open

allow := true
`

func TestSecurityHTTPSUpstream(t *testing.T) {
	ca := tlstest.NewCA(t, "internal CA")
	other := tlstest.NewCA(t, "other CA")
	srv, got := secTLSUpstream(t, ca)
	cfg := `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[log]
decisions = "off"

[[route]]
name = "custom-ca"
path = "/custom"
upstream = "{{HTTPS}}"
upstream_ca = "internal-ca.pem"
policy = "routes.open"

[[route]]
name = "system-pool"
path = "/system"
upstream = "{{HTTPS}}"
policy = "routes.open"

[[route]]
name = "wrong-ca"
path = "/wrong"
upstream = "{{HTTPS}}"
upstream_ca = "other-ca.pem"
policy = "routes.open"
`
	e := startEnv(t, strings.ReplaceAll(cfg, "{{HTTPS}}", srv.URL), map[string]string{
		"policies/routes/open.rego": secAllowAll,
		"internal-ca.pem":           string(ca.CertPEM),
		"other-ca.pem":              string(other.CertPEM),
	}, Options{})

	r := e.do("POST", "/custom", []byte(`{"n":1}`), nil)
	if r.Status != 201 || r.Body != "secure upstream" {
		t.Fatalf("custom CA: status %d body %q, want 201 from the HTTPS upstream\n%s", r.Status, r.Body, e.logBuf.String())
	}
	select {
	case h := <-got:
		if h.Get("X-Seen-Tls") != "yes" {
			t.Fatalf("upstream request was not over TLS: %v", h)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("upstream saw nothing")
	}
	for _, path := range []string{"/system", "/wrong"} {
		if r := e.do("POST", path, []byte(`{}`), nil); r.Status != 502 {
			t.Fatalf("%s: status %d, want 502 (certificate not trusted)", path, r.Status)
		}
	}
	select {
	case h := <-got:
		t.Fatalf("an untrusted upstream was sent a request: %v", h)
	default:
	}
	if !strings.Contains(e.logBuf.String(), "certificate signed by unknown authority") {
		t.Errorf("log does not say why the upstream failed:\n%s", e.logBuf.String())
	}
}

func TestSecurityTLSConfigErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	srv := ca.Server(t, "127.0.0.1")
	other := ca.Server(t, "127.0.0.1")
	base := `
[server]
listen = "127.0.0.1:0"
%s

[admin]
listen = "127.0.0.1:0"

[[route]]
name = "r"
path = "/r"
upstream = "%s"
%s
policy = "routes.open"
`
	files := map[string]string{
		"policies/routes/open.rego": secAllowAll,
		"server.crt":                string(srv.CertPEM),
		"server.key":                string(srv.KeyPEM),
		"other.key":                 string(other.KeyPEM),
		"ca.pem":                    string(ca.CertPEM),
	}
	cases := []struct {
		name, server, upstream, route, want string
	}{
		{"key without cert", `tls_key = "server.key"`, "http://127.0.0.1:1", "", "server.tls_key"},
		{"client_ca without tls", `client_ca = "ca.pem"`, "http://127.0.0.1:1", "", "server.client_ca"},
		{"mismatched key", "tls_cert = \"server.crt\"\ntls_key = \"other.key\"", "http://127.0.0.1:1", "", "server.tls_cert/tls_key"},
		{"missing client_ca file", "tls_cert = \"server.crt\"\ntls_key = \"server.key\"\nclient_ca = \"nope.pem\"", "http://127.0.0.1:1", "", "server.client_ca"},
		{"upstream_ca on http", "", "http://127.0.0.1:1", `upstream_ca = "ca.pem"`, "upstream_ca"},
		{"upstream_ca not a CA bundle", "", "https://127.0.0.1:1", `upstream_ca = "server.key"`, "upstream_ca"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range files {
				testutil.WriteFile(t, filepath.Join(dir, name), content)
			}
			path := filepath.Join(dir, "gateway.toml")
			testutil.WriteFile(t, path, fmt.Sprintf(base, tc.server, tc.upstream, tc.route))
			_, err := Check(context.Background(), path, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: err = %v, want one naming %q", err, tc.want)
			}
			if keyBody := strings.Split(string(srv.KeyPEM), "\n")[1]; strings.Contains(err.Error(), keyBody) {
				t.Fatalf("error shows key material: %v", err)
			}
			g, err := New(context.Background(), path, Options{})
			if err == nil {
				g.close()
				t.Fatalf("New accepted the config")
			}
		})
	}
}

// awaitDecisionRecords reads the decision log as JSON objects once it holds at least want
// records (the log is written asynchronously, flushed every decisionlog.FlushInterval).
func awaitDecisionRecords(t *testing.T, path string, want int) []map[string]any {
	t.Helper()
	var out []map[string]any
	testutil.WaitUntil(t, 5*time.Second, fmt.Sprintf("a decision log of at least %d records", want), func() bool {
		out = decisionRecords(t, path)
		return len(out) >= want
	})
	return out
}

// decisionRecords reads the decision log's complete records as JSON objects.
func decisionRecords(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	// A record being written may be read half-way: only complete lines count.
	raw := string(b)
	if i := strings.LastIndexByte(raw, '\n'); i >= 0 {
		raw = raw[:i]
	} else {
		raw = ""
	}
	var out []map[string]any
	for _, line := range strings.Split(raw, "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("decision log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}
