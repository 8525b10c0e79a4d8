package gateway

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/redistest"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

const fleetPolicy = `package routes.fleet

allow := true

rate_limit := {"key": "fleet", "limit": 10, "per": "1m"} if input.request.headers["x-limit"]

dedupe := {"key": input.request.headers["x-delivery"], "ttl": "1h"} if input.request.headers["x-delivery"]
`

func fleetConfig(upstream, redisURL, failMode, timeout string) string {
	return fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
read_timeout = "2s" # see obligations_test.go: drains must not wait on never-used connections
[admin]
listen = "127.0.0.1:0"
[log]
decisions = "{{DIR}}/decisions.log"
[state]
backend = "redis"
url = %q
timeout = %q
fail_mode = %q
prefix = "fleet-test:"
[[route]]
name = "fleet"
path = "/hooks/fleet"
upstream = %q
policy = "routes.fleet"
`, redisURL, timeout, failMode, upstream)
}

// startFleetMember runs a gateway on rs. timeout is the Redis call bound: generous where the
// test is about sharing (a loaded CI machine must not turn it into 503s), tight where it is
// about failing fast.
func startFleetMember(t *testing.T, up *upstream, rs *redistest.Server, failMode, timeout string) *env {
	return startEnv(t, fleetConfig(up.URL(), rs.URL(), failMode, timeout), map[string]string{"policies/fleet.rego": fleetPolicy}, Options{})
}

// TestFleetSharesLimitsAndDuplicates runs two gateways on one real redis-server.
func TestFleetSharesLimitsAndDuplicates(t *testing.T) {
	rs := redistest.Start(t)
	up := startUpstream(t)
	a := startFleetMember(t, up, rs, "closed", "2s")
	b := startFleetMember(t, up, rs, "closed", "2s")

	counts := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		g := a
		if i%2 == 1 {
			g = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := g.do("POST", "/hooks/fleet", nil, map[string]string{"X-Limit": "1"}).Status
			mu.Lock()
			counts[st]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[200] != 10 || counts[429] != 20 {
		t.Fatalf("30 requests over two gateways sharing 10/min: %v, want 10×200 and 20×429", counts)
	}

	h := map[string]string{"X-Delivery": "fleet-d1"}
	if r := a.do("POST", "/hooks/fleet", nil, h); r.Status != 200 || r.Header.Get("Hookwall-Duplicate") != "" {
		t.Fatalf("first delivery through A: %d", r.Status)
	}
	if r := b.do("POST", "/hooks/fleet", nil, h); r.Status != 200 || r.Header.Get("Hookwall-Duplicate") != "true" {
		t.Fatalf("replay through B: %d dup=%q, want a duplicate", r.Status, r.Header.Get("Hookwall-Duplicate"))
	}
}

// TestFleetRedisDownAndBack kills Redis under a fail-closed and a fail-open gateway, then
// restarts it: traffic recovers without restarting either gateway.
func TestFleetRedisDownAndBack(t *testing.T) {
	rs := redistest.Start(t)
	up := startUpstream(t)
	closed := startFleetMember(t, up, rs, "closed", "50ms")
	open := startFleetMember(t, up, rs, "open", "50ms")
	h := func() map[string]string { return map[string]string{"X-Delivery": nextDelivery()} }
	// With a 50ms bound a loaded machine may miss the first call: wait for a 200.
	testutil.WaitFor(t, func() bool { return closed.do("POST", "/hooks/fleet", nil, h()).Status == 200 })

	rs.Kill()
	start := time.Now()
	r := closed.do("POST", "/hooks/fleet", nil, h())
	if el := time.Since(start); r.Status != 503 || r.Header.Get("Retry-After") == "" || el > 50*time.Millisecond+500*time.Millisecond {
		t.Fatalf("fail_mode=closed with Redis down: %d Retry-After=%q in %v, want 503 within timeout+slack", r.Status, r.Header.Get("Retry-After"), el)
	}
	before := len(up.requests())
	if r := open.do("POST", "/hooks/fleet", nil, h()); r.Status != 200 {
		t.Fatalf("fail_mode=open with Redis down: %d, want forwarded", r.Status)
	}
	if len(up.requests()) != before+1 {
		t.Fatal("fail_mode=open did not forward")
	}
	// Each side counts the failed check and warns, saying what its fail_mode did.
	for _, m := range []struct {
		e    *env
		warn string
	}{{closed, "state backend failed; fail_mode=closed refuses"}, {open, "state backend failed; fail_mode=open forwards"}} {
		if v := metricValue(scrapeMetrics(t, m.e), "hookwall_state_checks_total", map[string]string{"result": "error"}); !(v >= 1) {
			t.Errorf(`hookwall_state_checks_total{result="error"} = %v, want at least 1`, v)
		}
		if !strings.Contains(m.e.logBuf.String(), m.warn) {
			t.Errorf("no warning %q in the log:\n%s", m.warn, m.e.logBuf.String())
		}
	}

	rs.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r := closed.do("POST", "/hooks/fleet", nil, h()); r.Status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("traffic did not recover within 10s of Redis returning")
		}
		time.Sleep(100 * time.Millisecond)
	}
	closed.stop()
	raw, err := os.ReadFile(filepath.Join(closed.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"state_error":`) || !strings.Contains(string(raw), `"outcome":"unavailable"`) {
		t.Fatalf("the decision log must record the state backend failure:\n%s", raw)
	}
}
