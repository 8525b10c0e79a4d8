package gateway

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
	"github.com/hookwall/hookwall/engine/tlsconf/tlstest"
)

// The listener's TLS files ([server] tls_cert, tls_key, client_ca) are re-read at every reload:
// replaced contents apply to new handshakes, or fail the reload with the old files in force.

// tlsReplace overwrites the file rel of the gateway's directory, as an operator or certbot would.
func (m *secMTLSEnv) tlsReplace(t *testing.T, rel string, content []byte) {
	t.Helper()
	testutil.WriteFile(t, m.path(rel), string(content))
}

// tlsReloadOK reloads through the admin API and wants "ok".
func (m *secMTLSEnv) tlsReloadOK(t *testing.T) {
	t.Helper()
	if code, ans := m.adminReload(); code != 200 || ans["result"] != "ok" {
		t.Fatalf("POST /-/reload: %d %v, want 200 ok", code, ans)
	}
}

// tlsPost sends one request on a new connection made with c (RootCAs: the gateway's server CA
// unless set) and returns the status and the connection's TLS state.
func (m *secMTLSEnv) tlsPost(c *tls.Config) (int, *tls.ConnectionState, error) {
	if c.RootCAs == nil {
		c.RootCAs = m.serverC.Pool()
	}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: c, DisableKeepAlives: true}}
	r, err := hc.Post(m.url, "application/json", strings.NewReader(`{}`))
	if err != nil {
		return 0, nil, err
	}
	defer r.Body.Close()
	return r.StatusCode, r.TLS, nil
}

// sending always presents leaf, whether or not the server asked for its CA.
func sending(leaf *tlstest.Leaf) *tls.Config {
	return &tls.Config{GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &leaf.TLS, nil }}
}

func wantAccepted(t *testing.T, m *secMTLSEnv, what string, c *tls.Config) *tls.ConnectionState {
	t.Helper()
	st, cs, err := m.tlsPost(c)
	if err != nil || st != 200 {
		t.Fatalf("%s: status %d err %v, want 200", what, st, err)
	}
	return cs
}

func wantRefused(t *testing.T, m *secMTLSEnv, what string, c *tls.Config, reason string) {
	t.Helper()
	st, _, err := m.tlsPost(c)
	if err == nil || !strings.Contains(err.Error(), reason) {
		t.Fatalf("%s: status %d err %v, want the handshake refused with %q", what, st, err, reason)
	}
}

// (1) An operator removes a partner CA from client_ca and reloads: its certificates are refused
// from then on, and those of the CA that replaced it are accepted.
func TestTLSReloadClientCAReplaced(t *testing.T) {
	m := secStartMTLS(t)
	oldPartner := m.clientC.Client(t, "partner-a")
	newCA := tlstest.NewCA(t, "new partner CA")
	newPartner := newCA.Client(t, "partner-a")
	wantAccepted(t, m, "before: old CA's client", sending(oldPartner))
	wantRefused(t, m, "before: new CA's client", sending(newPartner), "unknown certificate authority")

	m.tlsReplace(t, "clients.pem", newCA.CertPEM)
	m.tlsReloadOK(t)
	wantRefused(t, m, "after: removed CA's client", sending(oldPartner), "unknown certificate authority")
	wantAccepted(t, m, "after: new CA's client", sending(newPartner))
	if !strings.Contains(m.logBuf.String(), "server.client_ca") {
		t.Errorf("log does not name the reloaded key:\n%s", m.logBuf)
	}
}

// TestTLSFilesAreWatched: the file watch reloads when client_ca is replaced (renamed over, as
// certbot's and a ConfigMap's updates are), with no reload asked for.
func TestTLSFilesAreWatched(t *testing.T) {
	m := secStartMTLS(t)
	oldPartner := m.clientC.Client(t, "partner-a")
	newCA := tlstest.NewCA(t, "new partner CA")
	wantAccepted(t, m, "before: old CA's client", sending(oldPartner))
	testutil.ReplaceFile(t, m.path("clients.pem"), string(newCA.CertPEM))
	testutil.WaitUntil(t, 5*time.Second, "client_ca was replaced; the removed CA's client is still accepted: the file is not watched", func() bool {
		_, _, err := m.tlsPost(sending(oldPartner))
		return err != nil && strings.Contains(err.Error(), "unknown certificate authority")
	})
	wantAccepted(t, m, "after: new CA's client", sending(newCA.Client(t, "partner-a")))
}

// (2) A renewed certificate (same paths, new contents) is served after a reload.
func TestTLSReloadServerCertificateRenewed(t *testing.T) {
	m := secStartMTLS(t)
	partner := m.clientC.Client(t, "partner-a")
	newServerCA := tlstest.NewCA(t, "renewed server CA")
	renewed := newServerCA.Server(t, "127.0.0.1")
	roots := m.serverC.Pool()
	roots.AddCert(newServerCA.Cert)
	cfg := func() *tls.Config { c := sending(partner); c.RootCAs = roots; return c }

	before := wantAccepted(t, m, "before", cfg())
	if before.PeerCertificates[0].Issuer.CommonName != "gateway server CA" {
		t.Fatalf("before: served %v", before.PeerCertificates[0].Subject)
	}
	m.tlsReplace(t, "server.crt", renewed.CertPEM)
	m.tlsReplace(t, "server.key", renewed.KeyPEM)
	m.tlsReloadOK(t)
	after := wantAccepted(t, m, "after", cfg())
	if got := after.PeerCertificates[0]; got.SerialNumber.Cmp(renewed.Cert.SerialNumber) != 0 {
		t.Fatalf("after reload the listener serves serial %v (issuer %s), want the renewed %v", got.SerialNumber, got.Issuer.CommonName, renewed.Cert.SerialNumber)
	}
	// The old server CA no longer vouches for the listener.
	c := sending(partner)
	if _, _, err := m.tlsPost(c); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("client trusting only the old server CA: err %v, want unknown authority", err)
	}
}

// (3) A broken new file fails the reload, naming the key and the file; nothing of the change
// is applied, the files in force keep serving.
func TestTLSReloadBrokenFileKeepsOld(t *testing.T) {
	m := secStartMTLS(t)
	partner := m.clientC.Client(t, "partner-a")
	otherCA := tlstest.NewCA(t, "other partner CA")
	other := otherCA.Client(t, "partner-a")
	newSrv := m.serverC.Server(t, "127.0.0.1")
	oldCert, _ := os.ReadFile(m.path("server.crt"))
	oldKey, _ := os.ReadFile(m.path("server.key"))
	oldCAs, _ := os.ReadFile(m.path("clients.pem"))
	served := wantAccepted(t, m, "before", sending(partner)).PeerCertificates[0].SerialNumber

	cases := []struct {
		name  string
		files map[string][]byte
		want  []string
	}{
		{"client_ca not PEM (with a valid new certificate)", map[string][]byte{
			"server.crt": newSrv.CertPEM, "server.key": newSrv.KeyPEM, "clients.pem": []byte("-- not a certificate --\n"),
		}, []string{"server.client_ca", "clients.pem", "no PEM certificate"}},
		{"client_ca holds a key", map[string][]byte{"clients.pem": append(append([]byte{}, otherCA.CertPEM...), newSrv.KeyPEM...)}, []string{"server.client_ca", "clients.pem", "want CERTIFICATE"}},
		{"tls_key of another certificate", map[string][]byte{"server.crt": newSrv.CertPEM, "clients.pem": otherCA.CertPEM}, []string{"server.tls_cert/tls_key", "server.crt", "server.key", "private key does not match"}},
		{"tls_cert truncated", map[string][]byte{"server.crt": newSrv.CertPEM[:40], "server.key": newSrv.KeyPEM}, []string{"server.tls_cert/tls_key", "server.crt", "failed to find"}},
		{"tls_key missing", map[string][]byte{"server.key": nil}, []string{"server.tls_key", "server.key", "no such file"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for rel, b := range tc.files {
				if b == nil {
					if err := os.Remove(m.path(rel)); err != nil {
						t.Fatal(err)
					}
					continue
				}
				m.tlsReplace(t, rel, b)
			}
			code, ans := m.adminReload()
			if code != 422 || ans["result"] != "error" {
				t.Fatalf("POST /-/reload: %d %v, want 422", code, ans)
			}
			for _, w := range append(tc.want, m.path("gateway.toml")) {
				if !strings.Contains(ans["error"], w) {
					t.Errorf("error %q does not say %q", ans["error"], w)
				}
			}
			for _, k := range [][]byte{newSrv.KeyPEM, oldKey} {
				if body := strings.Split(string(k), "\n")[1]; strings.Contains(ans["error"], body) || strings.Contains(m.logBuf.String(), body) {
					t.Fatalf("key material in the error or the log: %q", ans["error"])
				}
			}
			cs := wantAccepted(t, m, "after the refused reload: old CA's client", sending(partner))
			if cs.PeerCertificates[0].SerialNumber.Cmp(served) != 0 {
				t.Errorf("after the refused reload the listener serves serial %v, want the old %v", cs.PeerCertificates[0].SerialNumber, served)
			}
			wantRefused(t, m, "after the refused reload: other CA's client", sending(other), "unknown certificate authority")
			m.tlsReplace(t, "server.crt", oldCert)
			m.tlsReplace(t, "server.key", oldKey)
			m.tlsReplace(t, "clients.pem", oldCAs)
			m.tlsReloadOK(t)
		})
	}
}

// (4) A session ticket issued before client_ca changed does not resume after it: the client
// handshakes in full, and a certificate of a removed CA is refused.
func TestTLSReloadSessionTicketsAfterCAChange(t *testing.T) {
	for _, v := range []struct {
		name string
		max  uint16
	}{{"TLS 1.3", tls.VersionTLS13}, {"TLS 1.2", tls.VersionTLS12}} {
		t.Run(v.name, func(t *testing.T) {
			m := secStartMTLS(t)
			partner := m.clientC.Client(t, "partner-a")
			newCA := tlstest.NewCA(t, "new partner CA")
			// One client, one session cache: what a partner's HTTP client keeps between requests.
			c := sending(partner)
			c.MaxVersion = v.max
			c.ClientSessionCache = tls.NewLRUClientSessionCache(8)
			wantAccepted(t, m, "first", c)
			if cs := wantAccepted(t, m, "second", c); !cs.DidResume {
				t.Fatal("the second connection did not resume: the test proves nothing")
			}
			m.tlsReloadOK(t) // nothing changed: tickets stay valid
			if cs := wantAccepted(t, m, "after a reload that changed nothing", c); !cs.DidResume {
				t.Error("a reload that changed no file invalidated the session tickets")
			}

			// The partner CA stays trusted, another is added: tickets are still not resumed.
			m.tlsReplace(t, "clients.pem", append(append([]byte{}, m.clientC.CertPEM...), newCA.CertPEM...))
			m.tlsReloadOK(t)
			if cs := wantAccepted(t, m, "after client_ca grew", c); cs.DidResume {
				t.Error("a ticket issued under the old client_ca was resumed after the reload")
			}
			if cs := wantAccepted(t, m, "under the new client_ca", c); !cs.DidResume {
				t.Error("a ticket issued under the new client_ca did not resume")
			}

			// The partner CA is removed: its ticket must not carry the identity past it.
			m.tlsReplace(t, "clients.pem", newCA.CertPEM)
			m.tlsReloadOK(t)
			st, cs, err := m.tlsPost(c)
			if err == nil {
				t.Fatalf("after the partner CA was removed: status %d, resumed %v; want the handshake refused", st, cs.DidResume)
			}
			if !strings.Contains(err.Error(), "unknown certificate authority") {
				t.Errorf("after the partner CA was removed: %v, want unknown certificate authority", err)
			}
			wantAccepted(t, m, "new CA's client", sending(newCA.Client(t, "partner-a")))
		})
	}
}

// keptAlive is one client connection to the gateway that stays open between requests, as a
// partner's HTTP client keeps it.
type keptAlive struct {
	conn net.Conn
	br   *bufio.Reader
	host string
}

func (m *secMTLSEnv) keepAlive(t *testing.T, c *tls.Config) *keptAlive {
	t.Helper()
	u, err := url.Parse(m.url)
	if err != nil {
		t.Fatal(err)
	}
	c.RootCAs = m.serverC.Pool()
	conn, err := tls.Dial("tcp", u.Host, c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck
	return &keptAlive{conn: conn, br: bufio.NewReader(conn), host: u.Host}
}

// post sends one request on the connection and reads its answer.
func (k *keptAlive) post(t *testing.T) *http.Response {
	t.Helper()
	if _, err := io.WriteString(k.conn, "POST /hooks/mtls HTTP/1.1\r\nHost: "+k.host+"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
		t.Fatalf("write: %v", err)
	}
	r, err := http.ReadResponse(k.br, nil)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if _, err := io.Copy(io.Discard, r.Body); err != nil {
		t.Fatalf("read the body: %v", err)
	}
	r.Body.Close()
	return r
}

// (5) A connection whose handshake came before a reload that removed its client's CA is not
// served after the reload: its next request gets 421 and the connection is closed. A
// connection of a CA that stays keeps being served.
func TestTLSReloadClientCARemovedKeptAliveConnection(t *testing.T) {
	m := secStartMTLS(t)
	stayCA := tlstest.NewCA(t, "staying partner CA")
	m.tlsReplace(t, "clients.pem", append(append([]byte{}, m.clientC.CertPEM...), stayCA.CertPEM...))
	m.tlsReloadOK(t)
	removed := m.keepAlive(t, sending(m.clientC.Client(t, "partner-a")))
	stays := m.keepAlive(t, sending(stayCA.Client(t, "partner-a")))
	for _, k := range []*keptAlive{removed, stays} {
		if r := k.post(t); r.StatusCode != 200 {
			t.Fatalf("before: %d, want 200", r.StatusCode)
		}
	}

	m.tlsReplace(t, "clients.pem", stayCA.CertPEM)
	m.tlsReloadOK(t)
	wantRefused(t, m, "a new connection of the removed CA's client", sending(m.clientC.Client(t, "partner-a")), "unknown certificate authority")
	r := removed.post(t)
	if r.StatusCode != http.StatusMisdirectedRequest || !r.Close {
		t.Fatalf("after the reload, on the kept-alive connection of the removed CA's client: %d (Connection: close %v), want 421 and the connection closed", r.StatusCode, r.Close)
	}
	if n, err := removed.br.ReadByte(); err != io.EOF {
		t.Errorf("the refused connection stays open: read %v, %v; want EOF", n, err)
	}
	for i := range 3 {
		if r := stays.post(t); r.StatusCode != 200 || r.Close {
			t.Errorf("request %d after the reload, on the kept-alive connection of the staying CA's client: %d (Connection: close %v), want 200 on the same connection", i, r.StatusCode, r.Close)
		}
	}
	testutil.WaitUntil(t, 3*time.Second, "no record of the refusal", func() bool {
		for _, rec := range decisionRecords(t, m.path("decisions.log")) {
			if rec["status"] == float64(421) && strings.Contains(fmt.Sprint(rec["error"]), "server.client_ca") {
				return true
			}
		}
		return false
	})
}
