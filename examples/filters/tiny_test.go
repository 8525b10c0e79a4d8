package filters

import (
	"strings"
	"testing"

	"github.com/hookwall/hookwall/examples/filters/internal/filtertest"
	"github.com/hookwall/hookwall/sdk/sdktest"
)

// TestTiny runs the hand-written WAT module through the gateway's host.
func TestTiny(t *testing.T) {
	f := filtertest.Load(t, filtertest.NewHost(t), "tiny/tiny.wasm", "")
	cases := []struct{ route, want string }{
		{"github", "github"},
		{strings.Repeat("r", 256), strings.Repeat("r", 256)}, // fits exactly
		{strings.Repeat("r", 257), "?"},                      // too long: get_route wrote nothing
	}
	for _, c := range cases {
		req := sdktest.NewRequest("POST", "/hooks/x", []byte(`{"a":1}`)).WithHeader("X-Keep", "1")
		req.Route = c.route
		res, err := f.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Next {
			t.Fatal("tiny must forward")
		}
		if got := res.Forwarded.Header.Get("X-Hookwall-Route"); got != c.want {
			t.Errorf("route %.10q…: X-Hookwall-Route = %.10q…, want %.10q…", c.route, got, c.want)
		}
		if res.Forwarded.Header.Get("X-Keep") != "1" || string(res.Forwarded.Body) != `{"a":1}` {
			t.Error("tiny changed more than its header")
		}
		if res.Labels["tiny"] != "seen" || len(res.Labels) != 1 {
			t.Errorf("labels = %v, want tiny=seen", res.Labels)
		}
	}
}
