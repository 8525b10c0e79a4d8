package watch

import (
	"fmt"
	"net/netip"
	"runtime"
	"testing"
	"time"
)

// burstFrom refuses ip's forged signatures min_events (3) times at now: one anomaly.
func burstFrom(w *Watcher, ip string, now time.Time) {
	for k := 0; k < 3; k++ {
		w.Observe("r", ip, "denied", 0, forged, nil, now)
	}
}

// v6 is the n-th IPv6 client, each of its own /64 (the prefix a client is blocked by).
func v6(n int) string { return fmt.Sprintf("2001:db8:%x:%x::1", n>>16, n&0xffff) }

// v6Key is the text v6(n)'s anomalies and blocks are kept under: its /64.
func v6Key(n int) string { return netip.MustParsePrefix(v6(n) + "/64").Masked().String() }

// TestBlockTableIsBoundedByDefault: without max_blocks, 10,500 distinct addresses, each
// anomalous, leave 10,000 blocks (the default); the other 500 anomalies are raised and
// counted but block nothing.
func TestBlockTableIsBoundedByDefault(t *testing.T) {
	w := newTestWatcher(t, "min_events = 3\nblock = true\nblock_for = \"10m\"\nmax_sources = 1024\n")
	now := time.Now()
	for n := 0; n < 10500; n++ {
		burstFrom(w, v6(n), now)
	}
	st := w.Stats()
	t.Logf("stats after 10,500 anomalous addresses: %+v", st)
	if st.Blocks != 10000 || len(w.blocks.m) != 10000 {
		t.Fatalf("%d blocks in force (%d held), want the default bound 10000", st.Blocks, len(w.blocks.m))
	}
	if len(w.blocks.strikes) > 2*10000 {
		t.Fatalf("%d strikes kept, want at most 20000", len(w.blocks.strikes))
	}
	if _, refuse, _ := w.Blocked(v6(0), now); !refuse {
		t.Fatal("the first block was dropped to make room")
	}
	if _, refuse, _ := w.Blocked(v6(10499), now); refuse {
		t.Fatal("an address past the bound is blocked")
	}
}

// TestNewBlockCostIsFlat: placing a block copies a shard of the request path's view, not
// the whole of it. The bytes allocated per new block are the same with 8,000 blocks held as
// with 1,000 (the whole-map copy allocated about 8 times more).
func TestNewBlockCostIsFlat(t *testing.T) {
	w := newTestWatcher(t, "min_events = 3\nblock = true\nblock_for = \"10m\"\nmax_sources = 1024\n")
	now := time.Now()
	n := 0
	batch := func(upTo int) (bytesPer float64, per time.Duration) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start, from := time.Now(), n
		for ; n < upTo; n++ {
			burstFrom(w, v6(n), now)
		}
		el := time.Since(start)
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc-before.TotalAlloc) / float64(upTo-from), el / time.Duration(upTo-from)
	}
	batch(1000)
	early, earlyT := batch(2000)
	batch(8000)
	late, lateT := batch(9000)
	t.Logf("per new block: %.0f bytes, %v with 1,000 held; %.0f bytes, %v with 8,000 held", early, earlyT, late, lateT)
	if w.Stats().Blocks != 9000 {
		t.Fatalf("%d blocks, want 9000", w.Stats().Blocks)
	}
	if late > 1.5*early {
		t.Fatalf("a new block allocates %.0f bytes with 8,000 held and %.0f with 1,000: it copies every block", late, early)
	}
}

// BenchmarkBlocked: the request path's check with 10,000 blocks held, for an address that
// is blocked and one that is not.
func BenchmarkBlocked(b *testing.B) {
	w := newTestWatcher(b, "min_events = 3\nblock = true\nblock_for = \"10m\"\nmax_sources = 1024\n")
	now := time.Now()
	for n := 0; n < 10000; n++ {
		w.blocks.add(v6(n), "r", "signature", now, "ratio")
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Blocked("2001:db8:0:7::1", now)
			w.Blocked("192.0.2.1", now)
		}
	})
}
