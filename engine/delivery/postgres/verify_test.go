package postgres_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/postgres"
	"github.com/hookwall/hookwall/engine/delivery/postgres/pgtest"
	"github.com/hookwall/hookwall/engine/tlsconf/tlstest"
)

// libpqEnv are the variables pgx reads besides the url; each case sets its own.
var libpqEnv = []string{"PGHOST", "PGPORT", "PGSSLMODE", "PGSSLROOTCERT", "PGSERVICE", "PGSERVICEFILE"}

// A server off this machine is reached only with its certificate verified, or in clear text
// the url asks for (disable): every sslmode that looks protected and checks nothing (the
// default prefer, allow, require without a root) is refused, in a URL or in key=value form,
// set by the url or by the environment, for the url's host or any other host it lists.
// Loopback and Unix sockets stay as they were.
func TestCheckURLRefusesAnUnverifiedServer(t *testing.T) {
	ca := tlstest.NewCA(t, "db CA").WriteCA(t, t.TempDir(), "ca.pem")
	for _, tc := range []struct {
		name, url string
		env       map[string]string
		refused   string // the host:port named, "" when accepted
		tls       bool
	}{
		{name: "no sslmode (prefer)", url: "postgres://hookwall:hunter2@db.example/hooks", refused: "db.example:5432", tls: true},
		{name: "prefer", url: "postgres://hookwall:hunter2@db.example:6432/hooks?sslmode=prefer", refused: "db.example:6432", tls: true},
		{name: "require", url: "postgres://hookwall:hunter2@db.example/hooks?sslmode=require", refused: "db.example:5432", tls: true},
		{name: "allow", url: "postgres://hookwall:hunter2@db.example/hooks?sslmode=allow", refused: "db.example:5432"},
		{name: "allow in key=value form", url: "host=10.0.0.5 user=hookwall password=hunter2 dbname=hooks sslmode=allow", refused: "10.0.0.5:5432"},
		{name: "ipv6", url: "postgres://hookwall:hunter2@[2001:db8::1]/hooks?sslmode=require", refused: "[2001:db8::1]:5432", tls: true},
		{name: "key=value", url: "host=db.example user=hookwall password=hunter2 dbname=hooks sslmode=require", refused: "db.example:5432", tls: true},
		{name: "a second host off the machine", url: "postgres://hookwall:hunter2@127.0.0.1:5432,db.example:5433/hooks?sslmode=require", refused: "db.example:5433", tls: true},
		{name: "PGSSLMODE=require", url: "postgres://hookwall:hunter2@db.example/hooks", env: map[string]string{"PGSSLMODE": "require"}, refused: "db.example:5432", tls: true},
		{name: "PGHOST off the machine", url: "postgres://hookwall:hunter2@/hooks?sslmode=prefer", env: map[string]string{"PGHOST": "db.example"}, refused: "db.example:5432", tls: true},
		{name: "PGSSLMODE=allow", url: "postgres://hookwall:hunter2@db.example/hooks", env: map[string]string{"PGSSLMODE": "allow"}, refused: "db.example:5432"},

		{name: "verify-full", url: "postgres://hookwall:hunter2@db.example/hooks?sslmode=verify-full"},
		{name: "verify-full, own root", url: "postgres://hookwall:hunter2@db.example/hooks?sslmode=verify-full&sslrootcert=" + url.QueryEscape(ca)},
		{name: "verify-ca", url: "postgres://hookwall:hunter2@db.example/hooks?sslmode=verify-ca&sslrootcert=" + url.QueryEscape(ca)},
		{name: "require with a root (verify-ca)", url: "postgres://hookwall:hunter2@db.example/hooks?sslmode=require&sslrootcert=" + url.QueryEscape(ca)},
		{name: "PGSSLMODE=verify-full", url: "postgres://hookwall:hunter2@db.example/hooks", env: map[string]string{"PGSSLMODE": "verify-full"}},
		{name: "disable (clear text asked for)", url: "postgresql://hookwall:hunter2@10.0.0.5/hooks?sslmode=disable"},
		{name: "disable, two hosts", url: "postgres://hookwall:hunter2@127.0.0.1:5432,db.example:5433/hooks?sslmode=disable"},
		{name: "PGSSLMODE=disable", url: "postgres://hookwall:hunter2@db.example/hooks", env: map[string]string{"PGSSLMODE": "disable"}},
		{name: "loopback", url: "postgres://hookwall:hunter2@127.0.0.1/hooks"},
		{name: "loopback v6", url: "postgres://hookwall:hunter2@[::1]/hooks?sslmode=disable"},
		{name: "localhost", url: "postgres://hookwall:hunter2@localhost/hooks?sslmode=disable"},
		{name: "unix socket", url: "host=/var/run/postgresql user=hookwall dbname=hooks sslmode=disable"},
		{name: "unix socket in a url", url: "postgres://hookwall@%2Fvar%2Frun%2Fpostgresql/hooks?sslmode=disable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range libpqEnv {
				t.Setenv(k, tc.env[k])
			}
			err := postgres.CheckURL(tc.url)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ue *postgres.UnverifiedError
			if !errors.As(err, &ue) || ue.Addr != tc.refused || ue.TLS != tc.tls {
				t.Fatalf("got %#v (%v), want %s refused (TLS %v)", ue, err, tc.refused, tc.tls)
			}
			if msg := err.Error(); !strings.Contains(msg, "add sslmode=verify-full to the url") || strings.Contains(msg, "hunter2") {
				t.Fatalf("the error does not say what to write, or quotes the password: %s", msg)
			}
		})
	}
}

// fakeServer answers PostgreSQL clients on ln as a man in the middle would: an SSLRequest
// gets 'S' and a TLS handshake with cert when offerTLS, else 'N' (a client that then tries
// again in clear text is served too); then it asks for the password in clear text. It
// sends on the returned channel what each connection came to: "connected" as soon as one
// is accepted, then "password: …" when a client sent one.
func fakeServer(t *testing.T, ln net.Listener, cert tls.Certificate, offerTLS bool) <-chan string {
	t.Helper()
	got := make(chan string, 16)
	t.Cleanup(func() { ln.Close() })
	readMsg := func(c net.Conn) ([]byte, error) {
		var l [4]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return nil, err
		}
		body := make([]byte, binary.BigEndian.Uint32(l[:])-4)
		_, err := io.ReadFull(c, body)
		return body, err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			got <- "connected"
			go func(c net.Conn) {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				startup, err := readMsg(c)
				if err != nil {
					return
				}
				if binary.BigEndian.Uint32(startup) == 80877103 { // SSLRequest
					if !offerTLS {
						_, _ = c.Write([]byte{'N'})
						if _, err := readMsg(c); err != nil { // the startup message, in clear text
							return
						}
					} else {
						_, _ = c.Write([]byte{'S'})
						tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}})
						if err := tc.Handshake(); err != nil {
							return
						}
						c = tc
						if _, err := readMsg(c); err != nil {
							return
						}
					}
				}
				_, _ = c.Write([]byte{'R', 0, 0, 0, 8, 0, 0, 0, 3}) // AuthenticationCleartextPassword
				var p [5]byte
				if _, err := io.ReadFull(c, p[:]); err != nil {
					return
				}
				pw := make([]byte, binary.BigEndian.Uint32(p[1:])-4)
				_, _ = io.ReadFull(c, pw)
				got <- "password: " + strings.TrimRight(string(pw), "\x00")
			}(c)
		}
	}()
	return got
}

// drain returns what fakeServer sent within wait.
func drain(got <-chan string, wait time.Duration) []string {
	var out []string
	for end := time.After(wait); ; {
		select {
		case s := <-got:
			out = append(out, s)
		case <-end:
			return out
		}
	}
}

// A url naming a server off this machine, without sslmode (as examples of PostgreSQL urls
// usually read), is refused by Open before anything is sent there: a man in the middle at
// that address (here the machine's own non-loopback address, where a fake server that
// declines TLS and asks for the password in clear text listens) sees no connection.
func TestOpenSendsNothingToAnUnverifiedServer(t *testing.T) {
	var ip net.IP
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			ip = n.IP
			break
		}
	}
	if ip == nil {
		t.Skip("no non-loopback IPv4 address on this machine to listen on")
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	got := fakeServer(t, ln, tls.Certificate{}, false)
	for _, k := range libpqEnv {
		t.Setenv(k, "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err = postgres.Open(ctx, postgres.Options{URL: "postgres://hookwall:hunter2@" + ln.Addr().String() + "/hooks?connect_timeout=2"})
	if seen := drain(got, 500*time.Millisecond); len(seen) != 0 {
		t.Fatalf("the server off the machine saw %q (Open: %v)", seen, err)
	}
	var ue *postgres.UnverifiedError
	if !errors.As(err, &ue) {
		t.Fatalf("Open: %v, want the unverified server refused", err)
	}
}

// With sslmode=verify-full a server whose certificate does not chain to the trusted root
// gets no password, whether it declines TLS (the client does not go on in clear text) or
// offers it with its own certificate.
func TestVerifyFullGivesAnUntrustedServerNoPassword(t *testing.T) {
	trusted := tlstest.NewCA(t, "db CA").WriteCA(t, t.TempDir(), "ca.pem")
	mallory := tlstest.NewCA(t, "mallory").Server(t, "127.0.0.1").TLS
	for _, offerTLS := range []bool{false, true} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := fakeServer(t, ln, mallory, offerTLS)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err = postgres.Open(ctx, postgres.Options{URL: "postgres://hookwall:hunter2@" + ln.Addr().String() + "/hooks?sslmode=verify-full&sslrootcert=" + url.QueryEscape(trusted)})
		cancel()
		seen := drain(got, 300*time.Millisecond)
		for _, s := range seen {
			if strings.HasPrefix(s, "password") {
				t.Fatalf("server offering TLS %v: %s", offerTLS, s)
			}
		}
		if err == nil || len(seen) == 0 {
			t.Fatalf("server offering TLS %v: Open %v, the server saw %q; want a refused connection", offerTLS, err, seen)
		}
	}
}

// A real PostgreSQL server offering TLS is used with sslmode=verify-full over a verified
// connection; one whose certificate does not chain to the root the url names is refused.
func TestOpenVerifiesARealServer(t *testing.T) {
	ca := tlstest.NewCA(t, "db CA")
	leaf := ca.Server(t, "127.0.0.1", "localhost")
	srv := pgtest.StartTLS(t, leaf.CertPEM, leaf.KeyPEM)
	dir := t.TempDir()
	verifyFull := func(root string) string {
		u, err := url.Parse(srv.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("sslmode", "verify-full")
		q.Set("sslrootcert", root)
		u.RawQuery = q.Encode()
		return u.String()
	}

	u := verifyFull(ca.WriteCA(t, dir, "ca.pem"))
	var ssl bool
	if err := pgtest.Connect(t, u).QueryRow(context.Background(), "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").Scan(&ssl); err != nil || !ssl {
		t.Fatalf("connection over TLS: %v %v", ssl, err)
	}
	ctx := context.Background()
	s, err := postgres.Open(ctx, postgres.Options{URL: u})
	if err != nil {
		t.Fatalf("Open with verify-full: %v", err)
	}
	defer s.Close()
	now := time.Now()
	if err := s.Enqueue(ctx, &delivery.Record{ID: "tls", Route: "r", Method: "POST", URI: "/", ReceivedAt: now, NextAt: now, Body: []byte("over TLS")}); err != nil {
		t.Fatal(err)
	}
	if r, _, err := s.Get(ctx, "tls"); err != nil || string(r.Body) != "over TLS" {
		t.Fatalf("Get: %v %v", r, err)
	}

	other := verifyFull(tlstest.NewCA(t, "another CA").WriteCA(t, dir, "other.pem"))
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := postgres.Open(octx, postgres.Options{URL: other}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Open trusting another CA: %v, want a certificate error", err)
	}
}

// A url whose sslrootcert cannot be read is refused naming the file and why (it was "does
// not parse", which sent the operator to the url), never with the password.
func TestCheckURLNamesAFileItCannotRead(t *testing.T) {
	for _, k := range libpqEnv {
		t.Setenv(k, "")
	}
	missing := filepath.Join(t.TempDir(), "pg-ca.pem")
	err := postgres.CheckURL("postgres://hookwall:hunter2@db.example/hooks?sslmode=verify-full&sslrootcert=" + url.QueryEscape(missing))
	if err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("CheckURL: %v; want the missing file %s named, and no password", err, missing)
	}
}
