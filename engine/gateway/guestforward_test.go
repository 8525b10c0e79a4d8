package gateway

import (
	"fmt"
	"strings"
	"testing"
)

// guestRouteConfig is a gateway with one route, /hooks/x, open, through the filter built
// from testdata/<guest>.wasm; server is extra [server] lines.
func guestRouteConfig(t *testing.T, guest, server, upstream string) string {
	t.Helper()
	return strings.Replace(quietHead, "[server]\n", "[server]\n"+server+"\n", 1) + fmt.Sprintf(`
[[filter]]
name = %q
module = %q

[[route]]
name = "hook"
path = "/hooks/x"
upstream = %q
policy = "routes.open"
filters = [%q]
`, guest, absPath(t, "testdata/"+guest+".wasm"), upstream, guest)
}

// openRoutePolicy allows everything and hands the upstream the address it judged.
var openRoutePolicy = map[string]string{"policies/open.rego": `package routes.open

allow := true

upstream_headers := {"X-Seen-Remote-Ip": input.request.remote_ip}
`}

// TestFilterCannotForgeTheForwardedClient: behind a trusted proxy, the X-Forwarded-For the
// upstream gets is the list the proxy sent, then the peer: the list input.request.remote_ip
// was read from, not the one a filter wrote (testdata/setxff.wat sets 6.6.6.6).
func TestFilterCannotForgeTheForwardedClient(t *testing.T) {
	up := startUpstream(t)
	e := startEnv(t, guestRouteConfig(t, "setxff", `trusted_proxies = ["127.0.0.1/32"]`, up.URL()), openRoutePolicy, Options{Logger: discardLogger()})
	for _, c := range []struct{ sent, want, remote string }{
		{"203.0.113.7", "203.0.113.7, 127.0.0.1", "203.0.113.7"},
		{"198.51.100.1, 203.0.113.7", "198.51.100.1, 203.0.113.7, 127.0.0.1", "203.0.113.7"},
		{"", "127.0.0.1", "127.0.0.1"},
	} {
		h := map[string]string{}
		if c.sent != "" {
			h["X-Forwarded-For"] = c.sent
		}
		n := len(up.requests())
		if r := e.do("POST", "/hooks/x", []byte(`{}`), h); r.Status != 200 {
			t.Fatalf("sent %q: status %d %s", c.sent, r.Status, r.Body)
		}
		reqs := up.requests()
		if len(reqs) != n+1 {
			t.Fatalf("sent %q: the upstream got %d requests, want 1", c.sent, len(reqs)-n)
		}
		got := reqs[n].Header
		if xff := got.Values("X-Forwarded-For"); len(xff) != 1 || xff[0] != c.want {
			t.Errorf("sent %q: the upstream got X-Forwarded-For %q, want %q (the policy judged %s)", c.sent, xff, c.want, got.Get("X-Seen-Remote-Ip"))
		}
		if seen := got.Get("X-Seen-Remote-Ip"); seen != c.remote {
			t.Errorf("sent %q: the policy judged remote_ip %q, want %q", c.sent, seen, c.remote)
		}
	}
}

// TestFilterCannotForwardAnAmbiguousPath: a path with an encoded slash that a filter sets
// (testdata/setpath.wat), or a query with a ";" (testdata/setquery.wat), is refused under
// path_normalization = "reject", as a client's is (400 for the client's, 502 for the
// filter's: the client sent nothing wrong), and is forwarded in its canonical form, under the
// route's base, with "forward_canonical".
func TestFilterCannotForwardAnAmbiguousPath(t *testing.T) {
	for _, c := range []struct{ guest, client, forwarded string }{
		{"setpath", "/hooks/x/..%2F..%2Fadmin", "/base/hooks/x/..%2F..%2Fadmin"},
		{"setquery", "/hooks/x?a=1;admin=true", "/base/hooks/x?a=1%3Badmin=true"},
	} {
		for _, mode := range []string{"reject", "forward_canonical"} {
			t.Run(c.guest+"/"+mode, func(t *testing.T) {
				up := startUpstream(t)
				cfg := guestRouteConfig(t, c.guest, fmt.Sprintf("path_normalization = %q", mode), up.URL()+"/base")
				e := startEnv(t, cfg, openRoutePolicy, Options{Logger: discardLogger()})
				if mode == "reject" {
					if r := e.do("POST", c.client, []byte(`{}`), nil); r.Status != 400 {
						t.Fatalf("the client's own %s: status %d, want 400", c.client, r.Status)
					}
				}
				r := e.do("POST", "/hooks/x", []byte(`{}`), nil)
				reqs := up.requests()
				switch {
				case mode == "reject" && (r.Status != 502 || len(reqs) != 0):
					t.Fatalf("status %d, the upstream got %d requests (%v); want 502 and none", r.Status, len(reqs), reqs)
				case mode == "forward_canonical" && (r.Status != 200 || len(reqs) != 1):
					t.Fatalf("status %d, the upstream got %d requests; want 200 and one", r.Status, len(reqs))
				case mode == "forward_canonical" && reqs[0].URI != c.forwarded:
					t.Fatalf("forwarded %q, want %q", reqs[0].URI, c.forwarded)
				}
			})
		}
	}
}
