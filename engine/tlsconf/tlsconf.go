package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	"github.com/hookwall/hookwall/engine/config"
)

// MinVersion is the oldest TLS version either side accepts.
const MinVersion = tls.VersionTLS12

// Server returns the listener's TLS configuration, or nil when s has no tls_cert (plain HTTP).
func Server(s *config.Server) (*tls.Config, error) {
	if s.TLSCert == "" && s.TLSKey == "" {
		if s.ClientCA != "" {
			return nil, errors.New("tlsconf: server.client_ca: needs tls_cert and tls_key")
		}
		return nil, nil
	}
	if s.TLSCert == "" || s.TLSKey == "" {
		return nil, errors.New("tlsconf: server.tls_cert and server.tls_key go together")
	}
	cert, err := tls.LoadX509KeyPair(s.TLSCert, s.TLSKey)
	if err != nil {
		// LoadX509KeyPair's errors name the problem (missing file, no PEM block, key
		// mismatch), never the key's bytes.
		return nil, fmt.Errorf("tlsconf: server.tls_cert/tls_key: %w", err)
	}
	c := &tls.Config{
		MinVersion:   MinVersion,
		Certificates: []tls.Certificate{cert},
		// fasthttp speaks HTTP/1.1 only; advertising it keeps ALPN clients from trying h2.
		NextProtos: []string{"http/1.1"},
	}
	if s.ClientCA != "" {
		pool, err := caPool(s.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("tlsconf: server.client_ca: %w", err)
		}
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return c, nil
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
