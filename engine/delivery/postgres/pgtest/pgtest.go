// Package pgtest gives tests a PostgreSQL server: the one HOOKWALL_TEST_POSTGRES_URL names
// (a superuser URL; CI may start one), or else a private throwaway cluster (initdb and
// postgres from PATH or /usr/lib/postgresql/*/bin) in a temp dir on a free 127.0.0.1 port,
// run as an unprivileged user when the test runs as root, stopped by PID in t.Cleanup.
//
// Without either the calling test is skipped with a message saying so, unless the CI
// environment variable is set: then it fails, because CI must never skip these tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names a PostgreSQL server to use instead of a private one.
const EnvURL = "HOOKWALL_TEST_POSTGRES_URL"

// Server is a PostgreSQL server for one test.
type Server struct {
	t     testing.TB
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

// Start returns a server: the one EnvURL names, or a private cluster.
func Start(t testing.TB) *Server {
	t.Helper()
	if u := os.Getenv(EnvURL); u != "" {
		return &Server{t: t, admin: u}
	}
	bin := findBin("initdb")
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("pgtest: no %s and no initdb (install postgresql: apt-get install -y postgresql) while CI is set", EnvURL)
		}
		t.Skipf("pgtest: no %s and no initdb in PATH or /usr/lib/postgresql/*/bin", EnvURL)
	}
	dir, err := os.MkdirTemp("", "hookwall-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("nobody")
		if err != nil {
			t.Fatalf("pgtest: running as root and no user nobody to run postgres as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(bin, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	port := freePort(t)
	// fsync off: these tests kill gateways, not the database; a throwaway cluster need not
	// survive a power cut.
	pg := exec.Command(filepath.Join(filepath.Dir(bin), "postgres"), "-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200")
	pg.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	pg.Dir = dir
	logf, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		t.Fatal(err)
	}
	pg.Stdout, pg.Stderr = logf, logf
	if err := pg.Start(); err != nil {
		t.Fatalf("pgtest: start postgres: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = pg.Wait(); close(done) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			_ = pg.Process.Signal(syscall.SIGINT) // fast shutdown
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = pg.Process.Kill()
				<-done
			}
			logf.Close()
		})
	}
	t.Cleanup(stop)
	s := &Server{t: t, admin: fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), stop: stop}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), s.admin)
		if err == nil {
			conn.Close(context.Background())
			return s
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "postgres.log"))
			t.Fatalf("pgtest: postgres did not start: %v\n%s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
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

func findBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) == 0 {
		return ""
	}
	return matches[len(matches)-1]
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
