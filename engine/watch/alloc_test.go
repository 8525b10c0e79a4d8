//go:build !race

package watch

import (
	"runtime"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/hookwall/hookwall/engine/decisionlog"
)

// The request path's two calls must not allocate: Observe for every outcome class (no
// anomaly raised) and Blocked with and without blocks in force.
func TestRequestPathAllocatesNothing(t *testing.T) {
	w := newTestWatcher(t, "min_events = 1000000\nblock = true\n")
	now := time.Now()
	labels := map[string]any{"sender": "acme"}
	for _, c := range []struct {
		outcome decisionlog.Outcome
		reasons []string
	}{{"allowed", nil}, {"denied", forged}, {"denied", []string{"invalid API key"}}, {"rate_limited", nil}, {"duplicate", nil}} {
		if n := testing.AllocsPerRun(1000, func() { w.Observe("r", "192.0.2.1", c.outcome, 0, c.reasons, labels, now) }); n != 0 {
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
			w.Observe("reference", "127.0.0.1", "allowed", 0, nil, nil, now)
		}
	})
}

// TestMemoryCap: a million distinct sources fit in the table sized at New; the ones that
// did not fit are counted as evictions. (Not under -race: its shadow memory is not ours.)
func TestMemoryCap(t *testing.T) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w := newTestWatcher(t, "max_sources = 65536\n")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	buf := make([]byte, 0, 16)
	const n = 1_000_000
	for i := 0; i < n; i++ {
		buf = strconv.AppendInt(append(buf[:0], "s-"...), int64(i), 10)
		w.Observe("r", string(buf), "denied", 0, forged, nil, now.Add(time.Duration(i)*time.Millisecond))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	st := w.Stats()
	if st.Capacity != 65536 || st.Sources != 65536 || st.Evictions != n-65536 {
		t.Fatalf("stats %+v: want 65536 tracked and %d evicted", st, n-65536)
	}
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	table := int64(unsafe.Sizeof(slot{})) * int64(st.Capacity+routeSlots)
	t.Logf("heap grew %d bytes over %d sources (tables: %d bytes, %d slots of %d bytes)", grown, n, table, st.Capacity, unsafe.Sizeof(slot{}))
	if grown > table+1<<20 {
		t.Fatalf("heap grew %d bytes: the watcher must stay within its tables (%d bytes) and a little", grown, table)
	}
	runtime.KeepAlive(w)
}
