package gateway

import (
	"strings"
	"testing"
	"time"
)

// Guest log budgets, as the filter package sets them: per guest call and per filter per
// second.
const (
	guestLogPerCall   = 16 << 10
	guestLogPerSecond = 256 << 10
)

// TestGuestLogFloodIsCapped runs the logloop guest (10 MiB of 1 KiB info messages in one
// handle_request) through the real gateway. One request logs at most the per-call budget, a
// burst of requests at most the per-second budget per second, and every byte not logged is
// counted in hookwall_filter_log_dropped_bytes_total.
func TestGuestLogFloodIsCapped(t *testing.T) {
	up := startUpstream(t)
	cfg := strings.ReplaceAll(`
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[log]
decisions = "off"

[[filter]]
name = "chatty"
module = "filters/logloop.wasm"
timeout = "2s"

[[route]]
name = "flood"
path = "/flood"
upstream = "{{UPSTREAM}}"
policy = "routes.open"
filters = ["chatty"]
`, "{{UPSTREAM}}", up.URL())
	e := startEnv(t, cfg, map[string]string{
		"policies/open.rego":   "package routes.open\n\nallow := true\n",
		"filters/logloop.wasm": testGuest(t, "logloop.wasm"),
	}, Options{})
	const perRequest = 10240 * 1024
	logged := func() int { return strings.Count(e.logBuf.String(), "guest-flood ") * 1024 }

	// Start on a fresh second, so the first request has the whole per-second budget.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	if r := e.do("POST", "/flood", nil, nil); r.Status != 200 {
		t.Fatalf("status %d %q, want 200 (the flood is dropped, not fatal)", r.Status, r.Body)
	}
	if got := logged(); got == 0 || got > guestLogPerCall {
		t.Fatalf("one request logged %d guest bytes, want 1..%d", got, guestLogPerCall)
	}

	const burst = 40
	start := time.Now()
	for range burst {
		if r := e.do("POST", "/flood", nil, nil); r.Status != 200 {
			t.Fatalf("status %d", r.Status)
		}
	}
	seconds := int(time.Since(start)/time.Second) + 2 // the windows the burst touched
	got := logged()
	if limit := seconds * guestLogPerSecond; got > limit {
		t.Errorf("%d requests over %d windows logged %d guest bytes, over the per-second budget (%d)", burst+1, seconds, got, limit)
	}

	dropped := metricValue(scrapeMetrics(t, e), "hookwall_filter_log_dropped_bytes_total", map[string]string{"filter": "chatty"})
	if want := float64((burst+1)*perRequest - got); dropped != want {
		t.Errorf("hookwall_filter_log_dropped_bytes_total = %.0f, want %.0f (every byte not logged)", dropped, want)
	}
}
