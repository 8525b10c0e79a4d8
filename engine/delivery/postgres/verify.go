package postgres

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The store's connection carries the database password and every delivery (with keys,
// sealed; without, in the clear). pgx follows libpq: without sslmode (in the url or
// PGSSLMODE) it tries TLS without checking the certificate and falls back to clear text,
// and sslmode=require checks nothing either, so anyone on the path answers as the server.
// Unless the server is on this machine (loopback, a Unix socket), the store therefore
// connects only where the server's certificate is verified: sslmode verify-full, or
// verify-ca (and require with sslrootcert, which pgx treats as verify-ca); or in clear text
// where the url says so, sslmode=disable, as a redis:// url does: nothing then looks
// protected that is not.

// errUnparsed is the error for a url pgx does not parse: its own errors may quote the url,
// and with it the password.
var errUnparsed = errors.New("does not parse as a PostgreSQL connection URL")

// parseError is the error for pgx's error parsing the url: a file the url (or PGSSLROOTCERT,
// PGSSLCERT, PGSSLKEY) names that cannot be read is named, with the operating system's
// reason, since that error holds the file's path and nothing of the url; any other is
// errUnparsed.
func parseError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("names a file that cannot be read (sslrootcert, sslcert or sslkey, in the url or the environment): %w", pe)
	}
	return errUnparsed
}

// CheckURL parses url as Open does (reading PGSSLMODE, PGHOST and the other libpq variables
// of the environment, and the files the url names) and returns Open's error when it would
// connect to a server off this machine without verifying its certificate. It connects to
// nothing. The error never quotes the url.
func CheckURL(url string) error {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return parseError(err)
	}
	return checkVerified(&cfg.ConnConfig.Config)
}

// UnverifiedError is Open's and CheckURL's error for a host the url would reach over the
// network without verifying the server's certificate.
type UnverifiedError struct {
	Addr string // host:port
	TLS  bool   // TLS without a certificate check; false: clear text
}

func (e *UnverifiedError) Error() string {
	how := "in clear text though TLS was asked for (sslmode allow, or prefer, the default, when the server declines TLS)"
	if e.TLS {
		how = "over TLS without checking the server's certificate (sslmode require, or prefer, the default when neither the url nor PGSSLMODE names one)"
	}
	return fmt.Sprintf("would connect to %s %s, so anyone on the way could pose as the server and take the password and the deliveries: "+
		"add sslmode=verify-full to the url (and sslrootcert=/path/to/ca.pem unless the server's certificate chains to the system's roots), "+
		"reach a server on this machine over loopback or a Unix socket, "+
		"or, on a network you trust with both, write sslmode=disable to say clear text is meant", e.Addr, how)
}

// checkVerified returns an *UnverifiedError for the first host cfg may connect to (its own,
// then its fallbacks: the other hosts of a multi-host url, prefer's clear-text retry) that
// is off this machine and is reached without a verified certificate: TLS that skips the
// check, or clear text where TLS is tried too (allow, prefer). pgx's verify-ca skips the
// built-in check and verifies the chain in VerifyPeerCertificate instead, so that counts as
// verified. Clear text alone (disable) is what the url asked for.
func checkVerified(cfg *pgconn.Config) error {
	hosts := append([]*pgconn.FallbackConfig{{Host: cfg.Host, Port: cfg.Port, TLSConfig: cfg.TLSConfig}}, cfg.Fallbacks...)
	for _, h := range hosts {
		if onThisMachine(h.Host) || verified(h.TLSConfig) || clearByChoice(h, hosts) {
			continue
		}
		return &UnverifiedError{Addr: net.JoinHostPort(h.Host, strconv.Itoa(int(h.Port))), TLS: h.TLSConfig != nil}
	}
	return nil
}

// clearByChoice reports whether h is reached in clear text and no attempt at its address
// uses TLS: sslmode=disable, not allow or prefer, whose TLS attempt makes the connection
// look protected.
func clearByChoice(h *pgconn.FallbackConfig, hosts []*pgconn.FallbackConfig) bool {
	if h.TLSConfig != nil {
		return false
	}
	for _, o := range hosts {
		if o.Host == h.Host && o.Port == h.Port && o.TLSConfig != nil {
			return false
		}
	}
	return true
}

func verified(tc *tls.Config) bool {
	return tc != nil && (!tc.InsecureSkipVerify || tc.VerifyPeerCertificate != nil)
}

// onThisMachine reports whether host, as pgx reads it, is a Unix socket's directory, a
// loopback address or the name localhost (which Open resolves to loopback addresses only:
// loopbackLookup).
func onThisMachine(host string) bool {
	if strings.HasPrefix(host, "/") {
		return true
	}
	if isLocalhost(host) {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func isLocalhost(host string) bool {
	return strings.EqualFold(strings.TrimSuffix(host, "."), "localhost")
}

// loopbackLookup wraps pgx's resolver so that localhost resolves to loopback addresses only:
// a machine whose hosts file lacks it asks DNS, whose answer may point elsewhere, where the
// connection is not verified (onThisMachine).
func loopbackLookup(lookup pgconn.LookupFunc) pgconn.LookupFunc {
	return func(ctx context.Context, host string) ([]string, error) {
		addrs, err := lookup(ctx, host)
		if err != nil || !isLocalhost(host) {
			return addrs, err
		}
		out := addrs[:0]
		for _, a := range addrs {
			if ip := net.ParseIP(a); ip != nil && ip.IsLoopback() {
				out = append(out, a)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("localhost resolves to no loopback address (is it missing from the hosts file?): write 127.0.0.1 in the url")
		}
		return out, nil
	}
}
