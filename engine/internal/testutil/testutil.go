// Package testutil holds the test helpers several engine packages share: waiting for a
// condition, writing files the way users and their tools do, checking how a client dials,
// and a buffer concurrent writers may write to. Only tests import it.
package testutil

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/lazyconn"
)

// waitDeadline is how long WaitFor waits: long enough for a loaded CI machine, and only ever
// reached by a test that fails anyway.
const waitDeadline = 10 * time.Second

// WaitFor polls cond until it holds; after 10 s the test fails.
func WaitFor(tb testing.TB, cond func() bool) {
	tb.Helper()
	WaitUntil(tb, waitDeadline, "condition not met", cond)
}

// WaitUntil polls cond every 5 ms for up to d and returns how long it took; past d the test
// fails, saying what it waited for.
func WaitUntil(tb testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			tb.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// WriteFile writes content to path, creating its directories. An existing file is truncated
// and rewritten in place, as `echo > f` does (its mode kept); a new one is 0600.
func WriteFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// ReplaceFile writes a temporary file beside path and renames it over path, as editors and
// configuration tools save.
func ReplaceFile(tb testing.TB, path, content string) {
	tb.Helper()
	tmp := path + ".tmp~"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		tb.Fatal(err)
	}
}

// Buffer is a bytes.Buffer that concurrent writers (a logger, a subprocess's stderr) may
// write to while the test reads it. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Bytes returns a copy of what was written so far.
func (s *Buffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// DialsLazily fails the test unless dial (a fasthttp.HostClient's DialTimeout; nil: its
// default dialer) hands over a lazyconn.Conn, dialling a loopback listener.
func DialsLazily(tb testing.TB, dial func(addr string, timeout time.Duration) (net.Conn, error)) {
	tb.Helper()
	if dial == nil {
		tb.Fatal("the client dials with fasthttp's default dialer")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	c, err := dial(ln.Addr().String(), time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*lazyconn.Conn); !ok {
		tb.Fatalf("the client dials a %T, want a *lazyconn.Conn", c)
	}
}
