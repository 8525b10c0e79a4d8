package tlsconf_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/tlsconf"
	"github.com/hookwall/hookwall/engine/tlsconf/tlstest"
)

func TestServerPlain(t *testing.T) {
	c, err := tlsconf.Server(&config.Server{})
	if err != nil || c != nil {
		t.Fatalf("Server(no tls) = %v, %v; want nil, nil", c, err)
	}
}

func TestServerErrors(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "ca")
	a := ca.Server(t, "127.0.0.1")
	b := ca.Server(t, "127.0.0.1")
	certA, keyA := a.Write(t, dir, "a")
	_, keyB := b.Write(t, dir, "b")
	caPath := ca.WriteCA(t, dir, "ca.pem")
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("not pem at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		s    config.Server
		want string
	}{
		{"cert without key", config.Server{TLSCert: certA}, "go together"},
		{"client_ca without cert", config.Server{ClientCA: caPath}, "server.client_ca"},
		{"missing cert file", config.Server{TLSCert: filepath.Join(dir, "nope.crt"), TLSKey: keyA}, "no such file"},
		{"key of another cert", config.Server{TLSCert: certA, TLSKey: keyB}, "server.tls_cert/tls_key"},
		{"client_ca without certificates", config.Server{TLSCert: certA, TLSKey: keyA, ClientCA: empty}, "no PEM certificate"},
		{"client_ca holding a key", config.Server{TLSCert: certA, TLSKey: keyA, ClientCA: keyA}, "want CERTIFICATE"},
		{"client_ca missing", config.Server{TLSCert: certA, TLSKey: keyA, ClientCA: filepath.Join(dir, "nope.pem")}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tlsconf.Server(&tc.s)
			if err == nil {
				t.Fatalf("Server = %v, nil; want an error containing %q", c, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "tlsconf: ") {
				t.Fatalf("error %q: want prefix %q and %q", err, "tlsconf: ", tc.want)
			}
			for _, k := range [][]byte{a.KeyPEM, b.KeyPEM} {
				body := strings.Split(string(k), "\n")[1]
				if strings.Contains(err.Error(), body) {
					t.Fatalf("error leaks key material: %q", err)
				}
			}
		})
	}
}

// serve accepts TLS connections with cfg and records each handshake's outcome.
func serve(t *testing.T, cfg *tls.Config) (addr string, states chan tls.ConnectionState) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	states = make(chan tls.ConnectionState, 16)
	tln := tls.NewListener(ln, cfg)
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				defer c.Close()
				tc := c.(*tls.Conn)
				_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
				if err := tc.Handshake(); err != nil {
					return
				}
				states <- tc.ConnectionState()
				_, _ = tc.Write([]byte("ok"))
			}(c)
		}
	}()
	return ln.Addr().String(), states
}

// roundTrip dials addr, completes the handshake and reads the server's "ok": with TLS 1.3
// a refused client certificate only shows on the first read.
func roundTrip(addr string, cfg *tls.Config) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(b) != "ok" {
		return errors.New("server answered " + string(b))
	}
	return nil
}

func TestServerMTLSHandshake(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "clients")
	other := tlstest.NewCA(t, "someone else")
	srvCert, srvKey := ca.Server(t, "127.0.0.1").Write(t, dir, "server")
	cfg, err := tlsconf.Server(&config.Server{TLSCert: srvCert, TLSKey: srvKey, ClientCA: ca.WriteCA(t, dir, "clients.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MinVersion != tls.VersionTLS12 || cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("MinVersion %x ClientAuth %v", cfg.MinVersion, cfg.ClientAuth)
	}
	addr, states := serve(t, cfg)
	good := ca.Client(t, "partner-a")
	base := func() *tls.Config { return &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"} }

	t.Run("client cert from the CA", func(t *testing.T) {
		c := base()
		c.Certificates = []tls.Certificate{good.TLS}
		if err := roundTrip(addr, c); err != nil {
			t.Fatalf("refused: %v", err)
		}
		st := <-states
		if len(st.PeerCertificates) == 0 || st.PeerCertificates[0].Subject.CommonName != "partner-a" {
			t.Fatalf("server saw peer certificates %v", st.PeerCertificates)
		}
	})
	mallory := other.Client(t, "mallory")
	refused := []struct {
		name string
		mod  func(*tls.Config)
		want string
	}{
		{"no client cert", func(*tls.Config) {}, "certificate required"},
		// GetClientCertificate sends the certificate even though its CA was not asked for.
		{"client cert from another CA", func(c *tls.Config) {
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &mallory.TLS, nil }
		}, "unknown certificate authority"},
		{"TLS 1.1", func(c *tls.Config) {
			c.Certificates = []tls.Certificate{good.TLS}
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		}, "protocol version not supported"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mod(c)
			err := roundTrip(addr, c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v; want the handshake refused with %q", err, tc.want)
			}
		})
	}
	t.Run("TLS 1.2 is accepted", func(t *testing.T) {
		c := base()
		c.Certificates = []tls.Certificate{good.TLS}
		c.MaxVersion = tls.VersionTLS12
		if err := roundTrip(addr, c); err != nil {
			t.Fatalf("refused: %v", err)
		}
		if st := <-states; st.Version != tls.VersionTLS12 {
			t.Fatalf("negotiated %x, want TLS 1.2", st.Version)
		}
	})
}

func TestUpstream(t *testing.T) {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, "internal")
	srv := ca.Server(t, "127.0.0.1", "upstream.internal")
	addr, _ := serve(t, &tls.Config{Certificates: []tls.Certificate{srv.TLS}})
	caPath := ca.WriteCA(t, dir, "internal.pem")
	otherPath := tlstest.NewCA(t, "other").WriteCA(t, dir, "other.pem")

	c, err := tlsconf.Upstream("127.0.0.1", caPath)
	if err != nil {
		t.Fatal(err)
	}
	if c.MinVersion != tls.VersionTLS12 {
		t.Fatalf("MinVersion %x", c.MinVersion)
	}
	if err := roundTrip(addr, c); err != nil {
		t.Fatalf("custom CA: %v", err)
	}

	sys, err := tlsconf.Upstream("127.0.0.1", "")
	if err != nil {
		t.Fatal(err)
	}
	var unknown x509.UnknownAuthorityError
	if err := roundTrip(addr, sys); !errors.As(err, &unknown) {
		t.Fatalf("system pool: err = %v, want unknown authority", err)
	}
	wrong, err := tlsconf.Upstream("127.0.0.1", otherPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(addr, wrong); !errors.As(err, &unknown) {
		t.Fatalf("other CA: err = %v, want unknown authority", err)
	}
	misnamed, err := tlsconf.Upstream("elsewhere.internal", caPath)
	if err != nil {
		t.Fatal(err)
	}
	var host x509.HostnameError
	if err := roundTrip(addr, misnamed); !errors.As(err, &host) {
		t.Fatalf("wrong name: err = %v, want a hostname error", err)
	}
	if _, err := tlsconf.Upstream("x", filepath.Join(dir, "missing.pem")); err == nil || !strings.HasPrefix(err.Error(), "tlsconf: upstream_ca: ") {
		t.Fatalf("missing CA file: err = %v", err)
	}
}

// TestListenerClientCAGeneration: the generation counts the applied updates that changed
// client_ca (a renewed server certificate does not), and VerifyClient checks a chain against
// the client_ca in force.
func TestListenerClientCAGeneration(t *testing.T) {
	dir := t.TempDir()
	ca, other := tlstest.NewCA(t, "partner CA"), tlstest.NewCA(t, "other partner CA")
	srvCert, srvKey := ca.Server(t, "127.0.0.1").Write(t, dir, "server")
	f := tlsconf.Files{Section: "server", Cert: srvCert, Key: srvKey, ClientCA: ca.WriteCA(t, dir, "clients.pem")}
	l, err := tlsconf.NewListener(f)
	if err != nil {
		t.Fatal(err)
	}
	partner, otherPartner := ca.Client(t, "partner-a").Cert, other.Client(t, "partner-b").Cert
	apply := func() {
		t.Helper()
		u, err := l.Prepare(f)
		if err != nil {
			t.Fatal(err)
		}
		u.Apply()
	}
	verify := func(what string, c *x509.Certificate, wantGen uint64, wantErr string) {
		t.Helper()
		gen, err := l.VerifyClient([]*x509.Certificate{c})
		if gen != wantGen || (err == nil) != (wantErr == "") || (err != nil && !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%s: VerifyClient = %d, %v; want %d, %q", what, gen, err, wantGen, wantErr)
		}
	}
	verify("at start", partner, 0, "")
	verify("at start", otherPartner, 0, `server.client_ca: client certificate "CN=partner-b,O=hookwall tests" no longer trusted`)

	ca.Server(t, "127.0.0.1").Write(t, dir, "server") // renewed: same paths, new contents
	apply()
	if g := l.ClientCAGeneration(); g != 0 {
		t.Errorf("after the server certificate was renewed: generation %d, want 0", g)
	}
	other.WriteCA(t, dir, "clients.pem")
	apply()
	if g := l.ClientCAGeneration(); g != 1 {
		t.Errorf("after client_ca changed: generation %d, want 1", g)
	}
	verify("after the partner CA was replaced", partner, 1, "no longer trusted")
	verify("after the partner CA was replaced", otherPartner, 1, "")
	if _, err := l.VerifyClient(nil); err == nil {
		t.Error("VerifyClient(nil) passed")
	}
}
