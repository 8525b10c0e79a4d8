package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/filter"
)

// TestPoolFitsUpstreamLatency: a standard-Go filter (which exports a response phase, so each
// request holds its instance across the upstream call) in front of a slow upstream, under
// concurrent load. With the default pool_max the pool grows and no request waits or is
// refused; with the pool held to its warm size (pool_max = pool) the same load waits and is
// waits (past its wait, refused), which is what the default is for.
func TestPoolFitsUpstreamLatency(t *testing.T) {
	guest := absPath(t, "../../examples/filters/eventallow/eventallow.wasm")
	run := func(t *testing.T, poolMax string) (ok, refused int64, st filter.Stats) {
		up := startUpstream(t)
		up.setHandler(func(ctx *fasthttp.RequestCtx) {
			time.Sleep(100 * time.Millisecond)
			ctx.SetStatusCode(200)
		})
		cfg := fmt.Sprintf(quietHead+`
[[filter]]
name = "events"
module = %q
config = '{"allow": ["push"]}'
pool = 2
# A generous CPU deadline (and pool wait): on a busy machine a 50 ms call may overrun, which
# is not what this test is about.
timeout = "2s"
%s

[[route]]
name = "hook"
path = "/hooks/x"
upstream = %q
policy = "routes.hook"
filters = ["events"]
`, guest, poolMax, up.URL())
		e := startEnv(t, cfg, map[string]string{"policies/hook.rego": "package routes.hook\n\nallow := true\n"}, Options{Logger: discardLogger()})
		const clients, each = 24, 4
		var okN, refusedN atomic.Int64
		var wg sync.WaitGroup
		for range clients {
			wg.Go(func() {
				for range each {
					req, _ := http.NewRequest("POST", e.base+"/hooks/x", strings.NewReader(`{}`))
					req.Header.Set("X-GitHub-Event", "push")
					resp, err := client.Do(req)
					if err != nil {
						t.Error(err)
						return
					}
					resp.Body.Close()
					switch resp.StatusCode {
					case 200:
						okN.Add(1)
					case 503:
						refusedN.Add(1)
					default:
						t.Errorf("status %d", resp.StatusCode)
					}
				}
			})
		}
		wg.Wait()
		e.g.filterStats(func(name string, s filter.Stats) {
			if name == "events" {
				st = s
			}
		})
		return okN.Load(), refusedN.Load(), st
	}

	ok, refused, st := run(t, "")
	t.Logf("default pool_max: %d ok, %d refused, %+v", ok, refused, st)
	if refused != 0 || ok != 24*4 || st.Waits != 0 || st.Live <= 2 {
		t.Fatalf("the pool did not grow to fit 24 concurrent requests: %d ok, %d refused, %+v", ok, refused, st)
	}
	ok, refused, st = run(t, "pool_max = 2")
	t.Logf("pool_max = 2: %d ok, %d refused, %+v", ok, refused, st)
	if st.Waits == 0 {
		t.Fatalf("with the pool held at 2 the same load never waited: %+v", st)
	}
}

// TestFullPoolRefusesEvenWithSkip: on_error = "skip" lets a request past a filter that
// failed, but a full pool is load, not the filter's failure: a flood that held every
// instance would otherwise switch the filter off. The one instance is held across a stalled
// upstream call by the first request; the second, past its wait, gets 503 and never reaches
// the upstream.
func TestFullPoolRefusesEvenWithSkip(t *testing.T) {
	guest := absPath(t, "../../examples/filters/eventallow/eventallow.wasm")
	up := startUpstream(t)
	release := make(chan struct{})
	arrived := make(chan struct{})
	var n atomic.Int32
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 1 { // the first holds the instance until the test lets it go
			close(arrived)
			<-release
		}
		ctx.SetStatusCode(200)
	})
	cfg := fmt.Sprintf(quietHead+`
[[filter]]
name = "events"
module = %q
config = '{"allow": ["push"]}'
pool = 1
pool_max = 1
timeout = "300ms"
on_error = "skip"

[[route]]
name = "hook"
path = "/hooks/x"
upstream = %q
policy = "routes.hook"
filters = ["events"]
timeout = "10s"
`, guest, up.URL())
	e := startEnv(t, cfg, map[string]string{"policies/hook.rego": "package routes.hook\n\nallow := true\n"}, Options{Logger: discardLogger()})
	post := func() (int, error) {
		req, _ := http.NewRequest("POST", e.base+"/hooks/x", strings.NewReader(`{}`))
		req.Header.Set("X-GitHub-Event", "push")
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	first := make(chan int, 1)
	go func() {
		st, err := post()
		if err != nil {
			t.Error(err)
		}
		first <- st
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the first request never reached the upstream")
	}
	st, err := post()
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	if st != http.StatusServiceUnavailable {
		t.Errorf("second request with the pool full: status %d, want 503 (on_error = \"skip\" must not bypass a full pool)", st)
	}
	if st := <-first; st != 200 {
		t.Errorf("first request: status %d, want 200", st)
	}
	if n := len(up.requests()); n != 1 {
		t.Errorf("the upstream got %d requests, want 1: the refused one went through", n)
	}
	if v := metricValue(scrapeMetrics(t, e), "hookwall_filter_errors_total", map[string]string{"filter": "events", "kind": "pool"}); v != 1 {
		t.Errorf(`hookwall_filter_errors_total{filter="events",kind="pool"} = %v, want 1`, v)
	}
}
