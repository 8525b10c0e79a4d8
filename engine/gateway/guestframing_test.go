package gateway

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestGuestCannotReframe: a filter that makes the request a GET without a body carrying
// Content-Length: 40, adds X_Forwarded_For and sets Host does not get any of it past the
// gateway: the upstream (a raw TCP server, which sees the bytes as sent) gets no length
// that would take the next request on the connection for a body, no header name with an
// underscore, and the X-Forwarded-Host of the Host the route matched.
func TestGuestCannotReframe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var heads []string
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					var head strings.Builder
					for {
						line, err := r.ReadString('\n')
						if err != nil {
							return
						}
						head.WriteString(line)
						if line == "\r\n" {
							break
						}
					}
					mu.Lock()
					heads = append(heads, head.String())
					mu.Unlock()
					if _, err := c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")); err != nil {
						return
					}
				}
			}()
		}
	}()
	cfg := quietHead + fmt.Sprintf(`
[[filter]]
name = "framing"
module = %q

[[route]]
name = "hook"
path = "/hooks/x"
upstream = "http://%s"
policy = "routes.open"
filters = ["framing"]
`, absPath(t, "testdata/guestframing.wasm"), ln.Addr())
	e := startEnv(t, cfg, map[string]string{"policies/open.rego": "package routes.open\n\nallow := true\n"}, Options{Logger: discardLogger()})
	for range 2 { // the second on the same upstream connection, which a stale length would eat
		resp, err := client.Post(e.base+"/hooks/x", "application/json", strings.NewReader(`{"a":1}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(heads) != 2 {
		t.Fatalf("the upstream read %d request heads, want 2:\n%q", len(heads), heads)
	}
	wantHost := strings.TrimPrefix(e.base, "http://")
	for i, h := range heads {
		lower := strings.ToLower(h)
		if !strings.HasPrefix(h, "GET /hooks/x ") {
			t.Errorf("request %d: %q, want the filter's GET", i, h)
		}
		if strings.Contains(lower, "content-length: 40") || strings.Contains(lower, "transfer-encoding") {
			t.Errorf("request %d went out with the filter's framing:\n%s", i, h)
		}
		if strings.Contains(h, "_") && strings.Contains(lower, "x_forwarded_for") {
			t.Errorf("request %d went out with an underscore header:\n%s", i, h)
		}
		if !strings.Contains(lower, "x-forwarded-host: "+strings.ToLower(wantHost)+"\r\n") {
			t.Errorf("request %d: X-Forwarded-Host is not the Host the route matched (%s):\n%s", i, wantHost, h)
		}
	}
}
