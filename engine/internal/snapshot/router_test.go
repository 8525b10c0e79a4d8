package snapshot

import (
	"testing"

	"github.com/hookwall/hookwall/engine/config"
)

// TestRouterMatchesTheMethod: routes with the same host and path are told apart by their
// methods; a method no route of the most specific kind takes stays with the first of them
// (its 405), never moving to a less specific route, such as a catch-all prefix whose policy
// may be laxer.
func TestRouterMatchesTheMethod(t *testing.T) {
	route := func(name, host, path, prefix string, methods ...string) *Route {
		r := &Route{Config: &config.Route{Name: name, Host: host, Path: path, Prefix: prefix, Methods: methods}}
		if len(methods) > 0 {
			r.methods = map[string]bool{}
			for _, m := range methods {
				r.methods[m] = true
			}
		}
		return r
	}
	rt := newRouter([]*Route{
		route("get", "", "/m", "", "GET"),
		route("post", "", "/m", "", "POST"),
		route("all", "", "", "/"),
		route("hosted", "x.example", "/m", "", "POST"),
		route("pfx-get", "", "", "/p/", "GET"),
		route("pfx-post", "", "", "/p/", "POST"),
		route("pub", "", "", "/hooks/pub"),
	})
	for _, c := range []struct {
		host, path, method, want string
	}{
		{"a.example", "/m", "GET", "get"},
		{"a.example", "/m", "POST", "post"},
		{"a.example", "/m", "PUT", "get"}, // 405 from the exact path, not the catch-all
		{"x.example:8080", "/m", "POST", "hosted"},
		{"x.example", "/m", "GET", "hosted"}, // 405: the host's own route is the most specific
		{"a.example", "/p/x", "POST", "pfx-post"},
		{"a.example", "/p/x", "GET", "pfx-get"},
		{"a.example", "/p/x", "DELETE", "pfx-get"},
		{"a.example", "/other", "DELETE", "all"},
		// A prefix is one of bytes, as the README says, not of segments.
		{"a.example", "/hooks/pub/x", "POST", "pub"},
		{"a.example", "/hooks/public-admin", "POST", "pub"},
	} {
		r, ok := rt.match([]byte(c.host), []byte(c.path), []byte(c.method))
		if !ok || r.Config.Name != c.want {
			got := "none"
			if ok {
				got = r.Config.Name
			}
			t.Errorf("%s %s%s: route %s, want %s", c.method, c.host, c.path, got, c.want)
		}
	}
}
