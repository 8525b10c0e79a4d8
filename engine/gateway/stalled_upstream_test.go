package gateway

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// stallListener accepts connections and never reads from them nor writes to them: an
// upstream that hangs in the TCP handshake's aftermath (a TLS handshake never answered, a
// request body never read).
func stallListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4 << 10) // the gateway's writes fill it soon
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

const stallConfig = `
[server]
listen = "127.0.0.1:0"
max_body = "32MiB"
[admin]
listen = "127.0.0.1:0"
[log]
decisions = "off"

[[route]]
name = "tls-stall"
path = "/tls"
upstream = "https://{{ADDR}}"
policy = "routes.open"
timeout = "500ms"

[[route]]
name = "read-stall"
path = "/plain"
upstream = "http://{{ADDR}}"
policy = "routes.open"
timeout = "500ms"
`

// TestStalledUpstreamEndsAtTheRouteTimeout: an upstream that accepts the connection and then
// does nothing, neither answering the TLS handshake nor reading a request body larger than
// the sockets' buffers, is given up at the route's timeout, with a 502 or 504, not held on
// to for ever. The answer's own stall (the upstream reads and never answers) is
// TestHardeningUpstreamFaults's "stall".
func TestStalledUpstreamEndsAtTheRouteTimeout(t *testing.T) {
	addr := stallListener(t)
	e := startEnv(t, strings.ReplaceAll(stallConfig, "{{ADDR}}", addr),
		map[string]string{"policies/routes/open.rego": secAllowAll}, Options{})
	const timeout = 500 * time.Millisecond
	big := bytes.Repeat([]byte("x"), 24<<20) // beyond any loopback socket buffer
	for _, c := range []struct {
		name, path string
		body       []byte
	}{
		{"TLS handshake never answered", "/tls", []byte(`{}`)},
		{"request body never read", "/plain", big},
	} {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan resp, 1)
			start := time.Now()
			go func() { done <- e.do("POST", c.path, c.body, nil) }()
			select {
			case r := <-done:
				took := time.Since(start)
				if r.Status != 504 && r.Status != 502 {
					t.Fatalf("status %d, want 504 or 502", r.Status)
				}
				if took < timeout-50*time.Millisecond {
					t.Errorf("answered after %v, before the route timeout %v: the stall was not waited for", took, timeout)
				}
			case <-time.After(timeout + 4*time.Second):
				t.Fatalf("no answer %v after the request: the gateway waits on a stalled upstream past the route timeout %v", time.Since(start), timeout)
			}
		})
	}
}
