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

// Files names a listener's TLS files and the config section they come from, which errors
// name ("server.tls_cert: …", "admin.tls_key: …").
type Files struct {
	Section             string
	Cert, Key, ClientCA string
}

// ServerFiles are the public listener's files, from [server].
func ServerFiles(s *config.Server) Files {
	return Files{Section: "server", Cert: s.TLSCert, Key: s.TLSKey, ClientCA: s.ClientCA}
}

// AdminFiles are the admin listener's files, from [admin] (no client certificates: the
// admin API authenticates with its bearer token).
func AdminFiles(a *config.Admin) Files {
	return Files{Section: "admin", Cert: a.TLSCert, Key: a.TLSKey}
}

// key names one of f's config keys.
func (f Files) key(name string) string { return f.Section + "." + name }

// Server returns the listener's TLS configuration, or nil when s has no tls_cert (plain HTTP).
// The files are read once; see Listener for a configuration that a reload can renew.
func Server(s *config.Server) (*tls.Config, error) {
	m, err := load(ServerFiles(s))
	if err != nil || m == nil {
		return nil, err
	}
	return m.cfg, nil
}

// material is one reading of a listener's files: the configuration built from them and the
// SHA-256 of each file's contents (tls_cert, tls_key, client_ca), to tell what changed.
type material struct {
	cfg  *tls.Config
	sums [3][sha256.Size]byte
	// caKey names the client_ca key ("server.client_ca") for errors; caGen counts the
	// applied updates that changed its contents (Listener.ClientCAGeneration).
	caKey string
	caGen uint64
}

// fileKeys name the files of material.sums, after the section.
var fileKeys = [3]string{"tls_cert", "tls_key", "client_ca"}

// load reads and parses f's files; nil, nil for plain HTTP.
func load(f Files) (*material, error) {
	if f.Cert == "" && f.Key == "" {
		if f.ClientCA != "" {
			return nil, fmt.Errorf("tlsconf: %s: needs tls_cert and tls_key", f.key("client_ca"))
		}
		return nil, nil
	}
	if f.Cert == "" || f.Key == "" {
		return nil, fmt.Errorf("tlsconf: %s and %s go together", f.key("tls_cert"), f.key("tls_key"))
	}
	m := &material{caKey: f.key("client_ca")}
	certPEM, err := os.ReadFile(f.Cert)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %s: %w", f.key("tls_cert"), err)
	}
	keyPEM, err := os.ReadFile(f.Key)
	if err != nil {
		return nil, fmt.Errorf("tlsconf: %s: %w", f.key("tls_key"), err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// X509KeyPair's errors name the problem (no PEM block, key mismatch), never the key's
		// bytes; the paths say which files.
		return nil, fmt.Errorf("tlsconf: %s/tls_key: %s, %s: %w", f.key("tls_cert"), f.Cert, f.Key, err)
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
	if f.ClientCA != "" {
		raw, err := os.ReadFile(f.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: %s: %w", f.key("client_ca"), err)
		}
		pool, err := parseCAs(f.ClientCA, raw)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: %s: %w", f.key("client_ca"), err)
		}
		m.sums[2] = sha256.Sum256(raw)
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	m.cfg = c
	return m, nil
}

// Listener is a listener's TLS, renewable while it serves. Config is handed to
// tls.NewListener once; every handshake then uses the files of the last Prepare whose Update was
// applied (the first reading until then).
type Listener struct {
	cur    atomic.Pointer[material]
	config *tls.Config
}

// NewListener reads f's files, or returns nil, nil when f has no tls_cert (plain HTTP).
func NewListener(f Files) (*Listener, error) {
	m, err := load(f)
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

// Update is a reading of the listener's files that has loaded and parsed, not yet in force.
type Update struct {
	l *Listener
	m *material
	// Changed names the keys whose file contents differ from those in force when Prepare
	// read them ("server.tls_cert", "admin.tls_key", …: the Files' section and key); empty:
	// nothing to apply.
	Changed []string
}

// Prepare reads and parses f's files (the same keys as the Listener's: a change of path or of
// plain HTTP to TLS needs a new listener). Nothing changes until Apply; an error leaves the
// files in force as they are.
func (l *Listener) Prepare(f Files) (*Update, error) {
	m, err := load(f)
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fmt.Errorf("tlsconf: %s: the listener serves TLS; plain HTTP needs a restart", f.key("tls_cert"))
	}
	u := &Update{l: l, m: m}
	old := l.cur.Load()
	for i := range m.sums {
		if m.sums[i] != old.sums[i] {
			u.Changed = append(u.Changed, f.key(fileKeys[i]))
		}
	}
	return u, nil
}

// Apply puts the update in force for the handshakes that start from now on. Connections
// already open keep theirs; when client_ca changed, ClientCAGeneration counts one more, and a
// server checks the client certificates of those connections again (VerifyClient). It does
// nothing when no file changed, so session tickets stay valid. Updates are applied one at a
// time.
func (u *Update) Apply() {
	if u == nil || len(u.Changed) == 0 {
		return
	}
	old := u.l.cur.Load()
	u.m.caGen = old.caGen
	if u.m.sums[2] != old.sums[2] {
		u.m.caGen++
	}
	u.l.cur.Store(u.m)
}

// ClientCAGeneration counts the applied updates that changed client_ca (0 until one does).
// A connection whose handshake verified its client certificate under an earlier count may
// hold a certificate of a CA removed since: VerifyClient checks it against the CAs in force.
// It is one atomic load, for every request.
func (l *Listener) ClientCAGeneration() uint64 { return l.cur.Load().caGen }

// VerifyClient verifies a client's certificate chain (leaf first, as its handshake received
// it) against the client_ca in force, as a handshake starting now would, and returns the
// ClientCAGeneration it verified under. Without client_ca every chain passes. The error
// names the key and the certificate's subject.
func (l *Listener) VerifyClient(certs []*x509.Certificate) (generation uint64, err error) {
	m := l.cur.Load()
	if m.cfg.ClientCAs == nil {
		return m.caGen, nil
	}
	if len(certs) == 0 {
		return m.caGen, fmt.Errorf("tlsconf: %s: %w", m.caKey, errNoClientCert)
	}
	opts := x509.VerifyOptions{
		Roots:         m.cfg.ClientCAs,
		Intermediates: x509.NewCertPool(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, c := range certs[1:] {
		opts.Intermediates.AddCert(c)
	}
	if _, err := certs[0].Verify(opts); err != nil {
		return m.caGen, fmt.Errorf("tlsconf: %s: client certificate %q no longer trusted: %w", m.caKey, certs[0].Subject.String(), err)
	}
	return m.caGen, nil
}

var errNoClientCert = errors.New("the connection has no client certificate")

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
