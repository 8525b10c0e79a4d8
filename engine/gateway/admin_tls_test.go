package gateway

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
	"github.com/hookwall/hookwall/engine/tlsconf/tlstest"
)

// The admin listener serves HTTPS with [admin] tls_cert and tls_key, so that its token does not
// cross the network in clear text; its files are renewed by a reload as the public listener's.

const adminTLSConfig = `
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
token = "adm1n-t0ken"
tls_cert = "admin.crt"
tls_key = "admin.key"
[policies]
dir = "{{DIR}}/policies"
[log]
decisions = "off"

[[route]]
name = "r"
path = "/r"
upstream = "http://127.0.0.1:9"
policy = "routes.r"
`

// adminTLSCall calls the admin listener over TLS, trusting roots, and returns the status, the
// body and the certificate the listener presented.
func adminTLSCall(t *testing.T, e *env, roots *tlstest.CA, method, path string) (int, string, []byte) {
	t.Helper()
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: roots.Pool()},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequest(method, strings.Replace(e.admin, "http://", "https://", 1)+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer adm1n-t0ken")
	r, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s over TLS: %v", method, path, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b), r.TLS.PeerCertificates[0].Raw
}

// startAdminTLS starts a gateway whose admin listener serves TLS with a certificate of a new
// CA for 127.0.0.1.
func startAdminTLS(t *testing.T) (*env, *tlstest.CA, *tlstest.Leaf) {
	t.Helper()
	ca := tlstest.NewCA(t, "admin CA")
	leaf := ca.Server(t, "127.0.0.1")
	e := startEnv(t, adminTLSConfig, map[string]string{
		"policies/routes/r.rego": "package routes.r\nallow := true\n",
		"admin.crt":              string(leaf.CertPEM),
		"admin.key":              string(leaf.KeyPEM),
	}, Options{})
	return e, ca, leaf
}

func TestAdminListenerServesTLS(t *testing.T) {
	e, ca, leaf := startAdminTLS(t)

	st, body, cert := adminTLSCall(t, e, ca, "GET", "/-/status")
	if st != 200 || !strings.Contains(body, `"revision"`) {
		t.Fatalf("GET /-/status over TLS: %d %q, want 200 and the status", st, body)
	}
	if !bytes.Equal(cert, leaf.Cert.Raw) {
		t.Fatal("the admin listener presented another certificate than admin.crt")
	}

	// Clear text is not served: the token must never be sent over it.
	r, err := (&http.Client{Timeout: 5 * time.Second}).Get(e.admin + "/healthz")
	if err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Fatal("GET /healthz over plain HTTP: 200, want the TLS listener to refuse it")
		}
	}

	// A renewed certificate (same paths, new contents) is presented after a reload.
	ca2 := tlstest.NewCA(t, "admin CA 2")
	leaf2 := ca2.Server(t, "127.0.0.1")
	testutil.WriteFile(t, e.path("admin.crt"), string(leaf2.CertPEM))
	testutil.WriteFile(t, e.path("admin.key"), string(leaf2.KeyPEM))
	if st, body, _ := adminTLSCall(t, e, ca, "POST", "/-/reload"); st != 200 || !strings.Contains(body, `"ok"`) {
		t.Fatalf("POST /-/reload: %d %q, want 200 ok", st, body)
	}
	if _, _, cert := adminTLSCall(t, e, ca2, "GET", "/healthz"); !bytes.Equal(cert, leaf2.Cert.Raw) {
		t.Fatal("after the reload, the admin listener still presents the old certificate")
	}
	if !strings.Contains(e.logBuf.String(), "admin.tls_cert") {
		t.Errorf("the log does not name the reloaded admin key:\n%s", e.logBuf)
	}

	// A broken file fails the reload, naming the key, and the certificate in force stays.
	testutil.WriteFile(t, e.path("admin.key"), "not a key")
	st, body, _ = adminTLSCall(t, e, ca2, "POST", "/-/reload")
	if st != 422 || !strings.Contains(body, "admin.tls_cert") {
		t.Fatalf("POST /-/reload with a broken admin.key: %d %q, want 422 naming admin.tls_cert", st, body)
	}
	if _, _, cert := adminTLSCall(t, e, ca2, "GET", "/healthz"); !bytes.Equal(cert, leaf2.Cert.Raw) {
		t.Fatal("after a failed reload, the admin listener no longer presents the certificate in force")
	}
}

// TestAdminTLSFilesAreWatched: a renewed admin certificate, renamed over the old one as
// certbot does, is presented with no reload asked for.
func TestAdminTLSFilesAreWatched(t *testing.T) {
	e, _, _ := startAdminTLS(t)
	ca2 := tlstest.NewCA(t, "admin CA 2")
	leaf2 := ca2.Server(t, "127.0.0.1")
	// The key first: a certificate over the old key would not load, and the watch waits for
	// both (a reload that fails keeps the old pair).
	testutil.ReplaceFile(t, e.path("admin.key"), string(leaf2.KeyPEM))
	testutil.ReplaceFile(t, e.path("admin.crt"), string(leaf2.CertPEM))
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca2.Pool()}, DisableKeepAlives: true,
	}}
	testutil.WaitUntil(t, 5*time.Second, "admin.crt and admin.key were replaced; the listener does not present the new certificate", func() bool {
		r, err := hc.Get(strings.Replace(e.admin, "http://", "https://", 1) + "/healthz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return bytes.Equal(r.TLS.PeerCertificates[0].Raw, leaf2.Cert.Raw)
	})
}
