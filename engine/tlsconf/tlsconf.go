package tlsconf

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/hookwall/hookwall/engine/config"
)

// MinVersion is the oldest TLS version either side accepts.
const MinVersion = tls.VersionTLS12

// Server returns the listener's TLS configuration, or nil when s has no tls_cert (plain HTTP).
// The files are read once; see Listener for a configuration that a reload can renew.
func Server(s *config.Server) (*tls.Config, error) {
	m, err := loadServer(s)
	if err != nil || m == nil {
		return nil, err
	}
	return m.cfg, nil
}

// serverMaterial is one reading of the listener's files: the configuration built from them and
// the SHA-256 of each file's contents (tls_cert, tls_key, client_ca), to tell what changed.
type serverMaterial struct {
	cfg  *tls.Config
	sums [3][sha256.Size]byte
}

// serverKeys name the files of serverMaterial.sums.
var serverKeys = [3]string{"server.tls_cert", "server.tls_key", "server.client_ca"}

// loadServer reads and parses s's files; nil, nil for plain HTTP.
func loadServer(s *config.Server) (*serverMaterial, error) {
	if s.TLSCert == "" && s.TLSKey == "" {
		if s.ClientCA != "" {
			return nil, errors.New("tlsconf: server.client_ca: needs tls_cert and tls_key")
		}
		return nil, nil
	}
	if s.TLSCert == "" || s.TLSKey == "" {
		return nil, errors.New("tlsconf: server.tls_cert and server.tls_key go together")
	}
	m := &serverMaterial{}
	certPEM, err := os.ReadFile(s.TLSCert)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: server.tls_cert: %w", err)
	}
	keyPEM, err := os.ReadFile(s.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: server.tls_key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// X509KeyPair's errors name the problem (no PEM block, key mismatch), never the key's
		// bytes; the paths say which files.
		return nil, fmt.Errorf("tlsconf: server.tls_cert/tls_key: %s, %s: %w", s.TLSCert, s.TLSKey, err)
	}
	m.sums[0], m.sums[1] = sha256.Sum256(certPEM), sha256.Sum256(keyPEM)
	c := &tls.Config{
		MinVersion:   MinVersion,
		Certificates: []tls.Certificate{cert},
		// fasthttp speaks HTTP/1.1 only; advertising it keeps ALPN clients from trying h2.
		NextProtos: []string{"http/1.1"},
	}
	// Session tickets are sealed with this configuration's own keys (made at first use and
	// rotated by crypto/tls), not the listener's: a ticket issued before a reload that
	// replaced the files is not resumed after it, so a client identity verified under a
	// removed CA cannot come back through resumption.
	c.WrapSession, c.UnwrapSession = c.EncryptTicket, c.DecryptTicket
	if s.ClientCA != "" {
		raw, err := os.ReadFile(s.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: server.client_ca: %w", err)
		}
		pool, err := parseCAs(s.ClientCA, raw)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: server.client_ca: %w", err)
		}
		m.sums[2] = sha256.Sum256(raw)
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	m.cfg = c
	return m, nil
}

// Listener is the public listener's TLS, renewable while it serves. Config is handed to
// tls.NewListener once; every handshake then uses the files of the last Prepare whose Update was
// applied (the first reading until then).
type Listener struct {
	cur    atomic.Pointer[serverMaterial]
	config *tls.Config
}

// NewListener reads s's files, or returns nil, nil when s has no tls_cert (plain HTTP).
func NewListener(s *config.Server) (*Listener, error) {
	m, err := loadServer(s)
	if err != nil || m == nil {
		return nil, err
	}
	l := &Listener{}
	l.cur.Store(m)
	l.config = &tls.Config{
		MinVersion: MinVersion,
		NextProtos: []string{"http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return l.cur.Load().cfg, nil
		},
	}
	return l, nil
}

// Config is the configuration to listen with. Do not modify it.
func (l *Listener) Config() *tls.Config { return l.config }

// Current is the configuration new handshakes use now (tests and diagnostics; do not modify).
func (l *Listener) Current() *tls.Config { return l.cur.Load().cfg }

// Update is a reading of the listener's files that has loaded and parsed, not yet in force.
type Update struct {
	l *Listener
	m *serverMaterial
	// Changed names the keys whose file contents differ from those in force when Prepare
	// read them ("server.tls_cert", "server.tls_key", "server.client_ca"); empty: nothing to
	// apply.
	Changed []string
}

// Prepare reads and parses s's files (the same keys as the Listener's: a change of path or of
// plain HTTP to TLS needs a new listener). Nothing changes until Apply; an error leaves the
// files in force as they are.
func (l *Listener) Prepare(s *config.Server) (*Update, error) {
	m, err := loadServer(s)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("tlsconf: server.tls_cert: the listener serves TLS; plain HTTP needs a restart")
	}
	u := &Update{l: l, m: m}
	old := l.cur.Load()
	for i := range m.sums {
		if m.sums[i] != old.sums[i] {
			u.Changed = append(u.Changed, serverKeys[i])
		}
	}
	return u, nil
}

// Apply puts the update in force for the handshakes that start from now on (connections already
// open keep theirs). It does nothing when no file changed, so session tickets stay valid.
func (u *Update) Apply() {
	if u == nil || len(u.Changed) == 0 {
		return
	}
	u.l.cur.Store(u.m)
}

// Upstream returns the client TLS configuration for an https upstream named serverName.
// caFile, when not empty, is a PEM bundle that replaces the system roots.
func Upstream(serverName, caFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: MinVersion, ServerName: serverName}
	if caFile != "" {
		pool, err := caPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: upstream_ca: %w", err)
		}
		c.RootCAs = pool
	}
	return c, nil
}

// caPool reads a PEM file of CA certificates. A file without a single certificate, or with a
// block that does not parse, is an error: a typo must not become an empty trust store.
func caPool(path string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseCAs(path, raw)
}

// parseCAs parses raw, the contents of the CA bundle at path, as caPool does.
func parseCAs(path string, raw []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for rest := raw; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: PEM block %d is a %q, want CERTIFICATE", path, n+1, b.Type)
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate found", path)
	}
	return pool, nil
}
