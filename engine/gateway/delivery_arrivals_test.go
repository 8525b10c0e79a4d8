package gateway

import (
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// arrivalsRoute puts queuedConfig's queued route behind a WASM filter (only push events
// pass) and POST alone.
const arrivalsRoute = `[[filter]]
name = "events"
module = "{{FILTERS}}/eventallow/eventallow.wasm"
config = '{"header":"X-GitHub-Event","allow":["push"]}'

[[route]]
name = "github"
filters = ["events"]
methods = ["POST"]`

const arrivalsPolicy = queuedPolicy + `
rate_limit := {"key": input.request.headers["x-client"], "limit": 1, "per": "1h"} if input.request.headers["x-client"]
`

// Every way a request of a queued route ends takes it out of the gauge of arrivals the
// SQLite writer reads, exactly once: a request left counted would hold every later group
// commit for its whole window, one counted off twice would hide the next arrival.
func TestQueuedArrivalsEveryEnding(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) }) // deliveries stay pending
	filters, err := filepath.Abs(filepath.Join("..", "..", "examples", "filters"))
	if err != nil {
		t.Fatal(err)
	}
	// The store holds 3 pending: the upstream keeps them so.
	cfg := strings.Replace(queuedConfig, "[[route]]\nname = \"github\"", arrivalsRoute, 1)
	cfg = strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{FILTERS}}", filters, "{{MAX}}", "3").Replace(cfg)
	e := startEnv(t, cfg, map[string]string{"policies/github.rego": arrivalsPolicy, "github.secret": "s3cret"}, Options{})
	arrivals := e.g.deliveries.Arrivals()
	if arrivals == nil {
		t.Fatal("a gateway with a SQLite store counts no arrivals")
	}
	body := `{"zen":"arrivals"}`
	with := func(h map[string]string, kv ...string) map[string]string {
		for i := 0; i < len(kv); i += 2 {
			h[kv[i]] = kv[i+1]
		}
		return h
	}
	bad := signed(body, "a-bad")
	bad["X-Hub-Signature-256"] = githubSig("wrong", []byte(body))
	// send sends one request, checks its answer, and that no arrival is counted after it.
	send := func(name, method string, headers map[string]string, status int) {
		t.Helper()
		var b []byte
		if method == "POST" {
			b = []byte(body)
		}
		if r := e.do(method, "/hooks/github", b, headers); r.Status != status {
			t.Fatalf("%s: status %d %s, want %d", name, r.Status, r.Body, status)
		}
		if n := arrivals.Coming(); n != 0 {
			t.Fatalf("%s: %d arrivals counted after the answer, want 0", name, n)
		}
	}
	for _, c := range []struct {
		name    string
		method  string
		headers map[string]string
		status  int
	}{
		{"allowed", "POST", signed(body, "a-1"), 202},
		{"denied by the policy", "POST", bad, 401},
		{"refused by a filter", "POST", with(signed(body, "a-2"), "X-GitHub-Event", "issues"), 403},
		{"dedupe duplicate", "POST", signed(body, "a-1"), 200},
		{"method not allowed", "GET", signed(body, "a-3"), 405},
		{"rate limit, first", "POST", with(signed(body, "a-4"), "X-Client", "c"), 202},
		{"rate limited", "POST", with(signed(body, "a-5"), "X-Client", "c"), 429},
	} {
		send(c.name, c.method, c.headers, c.status)
	}

	// A client that sends its request and goes away before the answer: it is stored all
	// the same (and fills the store).
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	req := fmt.Sprintf("POST /hooks/github HTTP/1.1\r\nHost: gw\r\nContent-Length: %d\r\n", len(body))
	for k, v := range signed(body, "a-gone") {
		req += k + ": " + v + "\r\n"
	}
	if _, err := conn.Write([]byte(req + "\r\n" + body)); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	testutil.WaitFor(t, func() bool {
		for _, m := range decisionLines(t, e, "queued") {
			if r, _ := m["request"].(map[string]any); r != nil && fmt.Sprint(r["headers"].(map[string]any)["X-Github-Delivery"]) == "a-gone" {
				return true
			}
		}
		return false
	})
	if n := arrivals.Coming(); n != 0 {
		t.Fatalf("client gone: %d arrivals counted, want 0", n)
	}

	send("store full", "POST", signed(body, "a-6"), 503)
	// The store down: its writer closed, an enqueue fails at once.
	if err := e.g.deliveries.Store().Close(); err != nil {
		t.Fatal(err)
	}
	send("store down", "POST", signed(body, "a-7"), 503)
}
