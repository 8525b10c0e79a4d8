//go:build !race

package watch

import (
	"testing"
	"time"
)

// The request path's two calls must not allocate: Observe for every outcome class (no
// anomaly raised) and Blocked with and without blocks in force.
func TestRequestPathAllocatesNothing(t *testing.T) {
	w := newTestWatcher(t, "min_events = 1000000\nblock = true\n")
	now := time.Now()
	labels := map[string]any{"sender": "acme"}
	for _, c := range []struct {
		outcome string
		reasons []string
	}{{"allowed", nil}, {"denied", forged}, {"denied", []string{"invalid API key"}}, {"rate_limited", nil}, {"duplicate", nil}} {
		if n := testing.AllocsPerRun(1000, func() { w.Observe("r", "192.0.2.1", c.outcome, c.reasons, labels, now) }); n != 0 {
			t.Errorf("Observe(%s): %v allocs, want 0", c.outcome, n)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { w.Blocked("192.0.2.1", now) }); n != 0 {
		t.Errorf("Blocked without blocks: %v allocs", n)
	}
	w.blocks.add("192.0.2.9", "r", "signature", now, "ratio")
	if n := testing.AllocsPerRun(1000, func() { w.Blocked("192.0.2.1", now); w.Blocked("192.0.2.9", now) }); n != 0 {
		t.Errorf("Blocked with blocks: %v allocs", n)
	}
}

func BenchmarkObserve(b *testing.B) {
	w := newTestWatcher(b, "")
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Observe("reference", "127.0.0.1", "allowed", nil, nil, now)
		}
	})
}
