// Package pgtest gives tests a PostgreSQL server: the one HOOKWALL_TEST_POSTGRES_URL names
// (a superuser URL; CI may start one), or else a private throwaway cluster (pgcluster, with
// fsync off) stopped in t.Cleanup.
//
// Without either the calling test is skipped with a message saying so, unless the CI
// environment variable is set: then it fails, because CI must never skip these tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"maps"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookwall/hookwall/engine/delivery/postgres/pgcluster"
)

// EnvURL names a PostgreSQL server to use instead of a private one.
const EnvURL = "HOOKWALL_TEST_POSTGRES_URL"

// Server is a PostgreSQL server for one test.
type Server struct {
	admin string // a superuser URL
	stop  func() // stops a private cluster; nil for EnvURL's server
}

// Stop stops a private cluster now (an outage); with EnvURL the test is skipped, since
// that server is not the test's to stop. Calling it again does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.stop == nil {
		t.Skipf("pgtest: %s names a shared server, which this test would have to stop", EnvURL)
	}
	s.stop()
}

// Set changes settings of the whole server (ALTER SYSTEM, then a reload of its
// configuration). With EnvURL the test is skipped: that server is not the test's to change.
func (s *Server) Set(t testing.TB, settings map[string]string) {
	t.Helper()
	if s.stop == nil {
		t.Skipf("pgtest: %s names a shared server, whose settings this test would have to change", EnvURL)
	}
	c := Connect(t, s.admin)
	ctx := context.Background()
	for k, v := range settings {
		if _, err := c.Exec(ctx, "ALTER SYSTEM SET "+pgx.Identifier{k}.Sanitize()+" = '"+strings.ReplaceAll(v, "'", "''")+"'"); err != nil {
			t.Fatalf("pgtest: set %s: %v", k, err)
		}
	}
	if _, err := c.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		t.Fatalf("pgtest: reload: %v", err)
	}
}

// Crash kills one of the server's processes with SIGKILL. PostgreSQL then ends every
// connection and recovers from its write-ahead log, which undoes the commits that did not
// wait for it (synchronous_commit = off) and were not yet written. Crash returns once the
// server accepts connections again. With EnvURL the test is skipped, as with Stop.
func (s *Server) Crash(t testing.TB) {
	t.Helper()
	if s.stop == nil {
		t.Skipf("pgtest: %s names a shared server, which this test would have to crash", EnvURL)
	}
	ctx := context.Background()
	victim := Connect(t, s.admin)
	// The witness is ended by the server's reset after the crash, not by the kill itself:
	// once its statement fails, the crash has been noticed.
	witness := Connect(t, s.admin)
	var pid int
	if err := victim.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("pgtest: kill the server's process %d: %v", pid, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for ; ; time.Sleep(10 * time.Millisecond) {
		if _, err := witness.Exec(ctx, "SELECT 1"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pgtest: the server did not notice its process %d killed", pid)
		}
	}
	if err := pgcluster.WaitReady(ctx, s.admin, time.Until(deadline)); err != nil {
		t.Fatalf("pgtest: the server did not recover from the crash: %v", err)
	}
}

// Start returns a server: the one EnvURL names, or a private cluster.
func Start(t testing.TB) *Server {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return &Server{admin: u}
	}
	return startPrivate(t, pgcluster.Options{})
}

// StartTLS returns a private cluster that offers TLS with the certificate and key (PEM)
// beside clear text (its URLs say sslmode=disable: a test changes that). With EnvURL the
// test is skipped: that server's certificate is not the test's to choose.
func StartTLS(t testing.TB, certPEM, keyPEM []byte) *Server {
	t.Helper()
	if os.Getenv(EnvURL) != "" {
		t.Skipf("pgtest: %s names a shared server, whose certificate this test would have to choose", EnvURL)
	}
	return startPrivate(t, pgcluster.Options{TLSCert: certPEM, TLSKey: keyPEM})
}

func startPrivate(t testing.TB, o pgcluster.Options) *Server {
	t.Helper()
	c, err := pgcluster.Start(context.Background(), o)
	if errors.Is(err, pgcluster.ErrNoInitdb) {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgtest: no %s and %v (install postgresql: apt-get install -y postgresql) while CI is set", EnvURL, err)
		}
		t.Skipf("pgtest: no %s and %v", EnvURL, err)
	}
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(c.Stop)
	return &Server{admin: c.URL, stop: c.Stop}
}

// NewDatabase creates an empty database, dropped when the test ends, and returns its URL.
func (s *Server) NewDatabase(t testing.TB) string {
	t.Helper()
	var raw [6]byte
	_, _ = rand.Read(raw[:])
	name := "hookwall_test_" + hex.EncodeToString(raw[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.admin)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, s.admin)
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_, _ = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(s.admin)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// Connect opens a connection to url with the run-time settings params (later ones win),
// closed when the test ends.
func Connect(t testing.TB, url string, params ...map[string]string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	for _, p := range params {
		maps.Copy(cfg.RuntimeParams, p)
	}
	ctx := context.Background()
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(ctx) })
	return c
}
