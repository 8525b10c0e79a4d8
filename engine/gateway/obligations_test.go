package gateway

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

const obligationsPolicy = `package routes.obl

allow := true

dedupe := {"key": input.request.headers["x-delivery"], "ttl": "1h"} if input.request.headers["x-delivery"]

rate_limit := {"key": concat(":", ["rl", input.request.headers["x-client"]]), "limit": 3, "per": "1m"} if input.request.headers["x-client"]
`

func startObligations(t *testing.T) (*env, *upstream) {
	t.Helper()
	up := startUpstream(t)
	e := startEnv(t, strings.ReplaceAll(`
[server]
listen = "127.0.0.1:0"
# Concurrent clients can leave a dialled, never-used connection: fasthttp waits read_timeout
# for its first request before a drain completes, so keep that shorter than the test's drain.
read_timeout = "2s"
[admin]
listen = "127.0.0.1:0"
[log]
decisions = "off"
[[route]]
name = "obl"
path = "/hooks/obl"
upstream = "{{UPSTREAM}}"
policy = "routes.obl"
`, "{{UPSTREAM}}", up.URL()), map[string]string{"policies/obl.rego": obligationsPolicy}, Options{})
	return e, up
}

func TestE2EDedupe(t *testing.T) {
	e, up := startObligations(t)
	h := map[string]string{"X-Delivery": "d-1"}
	if r := e.do("POST", "/hooks/obl", []byte("one"), h); r.Status != 200 || r.Header.Get("Hookwall-Duplicate") != "" {
		t.Fatalf("first delivery: %d %v", r.Status, r.Header)
	}
	r := e.do("POST", "/hooks/obl", []byte("one"), h)
	if r.Status != 200 || r.Header.Get("Hookwall-Duplicate") != "true" {
		t.Fatalf("replay: %d dup=%q, want 200 with Hookwall-Duplicate: true", r.Status, r.Header.Get("Hookwall-Duplicate"))
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("upstream saw %d requests; a replay must not reach it", n)
	}

	// An upstream failure releases the key: the provider's retry goes through.
	up.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(500) })
	h2 := map[string]string{"X-Delivery": "d-2"}
	if r := e.do("POST", "/hooks/obl", nil, h2); r.Status != 500 {
		t.Fatalf("upstream 500 relayed: got %d", r.Status)
	}
	up.setHandler(nil)
	if r := e.do("POST", "/hooks/obl", nil, h2); r.Status != 200 || r.Header.Get("Hookwall-Duplicate") != "" {
		t.Fatalf("retry after an upstream 500 must be forwarded: %d dup=%q", r.Status, r.Header.Get("Hookwall-Duplicate"))
	}
	if r := e.do("POST", "/hooks/obl", nil, h2); r.Header.Get("Hookwall-Duplicate") != "true" {
		t.Fatalf("after the successful retry the key is delivered: %d", r.Status)
	}

	// Concurrent copies while the first is in flight: exactly one is forwarded, the rest get 409.
	release := make(chan struct{})
	up.setHandler(func(ctx *fasthttp.RequestCtx) { <-release; ctx.SetStatusCode(200) })
	before := len(up.requests())
	var wg sync.WaitGroup
	statuses := make(chan int, 5)
	first := make(chan struct{})
	go func() {
		defer close(first)
		statuses <- e.do("POST", "/hooks/obl", nil, map[string]string{"X-Delivery": "d-3"}).Status
	}()
	testutil.WaitFor(t, func() bool { return len(up.requests()) == before+1 })
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- e.do("POST", "/hooks/obl", nil, map[string]string{"X-Delivery": "d-3"}).Status
		}()
	}
	wg.Wait()
	close(release)
	<-first
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[200] != 1 || counts[409] != 4 {
		t.Fatalf("concurrent copies: %v, want one 200 and four 409", counts)
	}
	up.setHandler(nil)
}

func TestE2ERateLimit(t *testing.T) {
	e, up := startObligations(t)
	h := map[string]string{"X-Client": "a"}
	for i := 0; i < 3; i++ {
		if r := e.do("POST", "/hooks/obl", nil, h); r.Status != 200 {
			t.Fatalf("request %d within the limit: %d", i+1, r.Status)
		}
	}
	r := e.do("POST", "/hooks/obl", nil, h)
	if r.Status != 429 {
		t.Fatalf("4th request: %d, want 429", r.Status)
	}
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > 20 {
		t.Fatalf("Retry-After %q: want an integer near 20s (limit 3/min)", r.Header.Get("Retry-After"))
	}
	if r := e.do("POST", "/hooks/obl", nil, map[string]string{"X-Client": "b"}); r.Status != 200 {
		t.Fatalf("another key is not limited: %d", r.Status)
	}
	if n := len(up.requests()); n != 4 {
		t.Fatalf("upstream saw %d, want 4 (the limited request is not forwarded)", n)
	}
}
