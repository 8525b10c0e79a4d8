//go:build !race

package server

import (
	"io"
	"log/slog"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/watch"
)

// withWatch turns the [watch] defaults on for an alloc harness.
func withWatch(tb testing.TB) func(cfg *config.Config, o *Options) {
	return func(_ *config.Config, o *Options) {
		cfg, err := config.Parse("gateway.toml", []byte("[watch]\n[[route]]\nname = \"r\"\npath = \"/r\"\nupstream = \"http://127.0.0.1:1\"\npolicy = \"routes.r\"\n"))
		if err != nil {
			tb.Fatal(err)
		}
		w, err := watch.New(watch.Options{Config: cfg.Watch, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			tb.Fatal(err)
		}
		o.Watch = w
	}
}

// TestWatchAddsNoAllocation: the reference request allocates as much with [watch] on as
// with it off (the block check and the observation allocate nothing).
func TestWatchAddsNoAllocation(t *testing.T) {
	// No cross-check sampling: its allocations come and go with the sample.
	off, on := newAllocHarness(t, "cross_check = 0"), newAllocHarnessWith(t, withWatch(t), "cross_check = 0")
	measure := func(h *allocHarness) float64 {
		return testing.AllocsPerRun(500, func() {
			if st := h.do("/reference"); st != 200 {
				t.Fatalf("status %d", st)
			}
		})
	}
	// Warmed as TestAllocationBudget's harness is (the state store's first growth), then
	// alternated, so both see the same machine, and the least of three each: an allocation
	// of the request path shows in every measurement, the process's background work on a
	// loaded machine in one now and then.
	for _, h := range []*allocHarness{off, on} {
		for range 300 {
			h.do("/reference")
		}
	}
	a, b := math.Inf(1), math.Inf(1)
	for range 3 {
		a = min(a, measure(off))
		b = min(b, measure(on))
	}
	t.Logf("reference request: %.0f allocs with [watch] off, %.0f with it on", a, b)
	if b > a {
		t.Errorf("[watch] adds %.0f allocations per request, want 0", b-a)
	}
}

// warm sends reference requests to each harness until one is answered 200 (at most 100
// each): filter pools fill on first use, which a loaded machine can make slow enough for the
// pool's wait to answer 503.
func warm(hs ...*allocHarness) {
	for _, h := range hs {
		for i := 0; i < 100; i++ {
			if h.do("/reference") == 200 {
				break
			}
		}
	}
}

// BenchmarkWatch runs the reference workload with [watch] off and on in one run. Each
// harness numbers its deliveries across -count runs: a repeated id would be answered as a
// duplicate, which costs less than a forwarded request (and the harness fails it).
func BenchmarkWatch(b *testing.B) {
	for _, c := range []struct {
		name string
		h    *allocHarness
		warm *bool
	}{{"off", newAllocHarness(b), new(bool)}, {"on", newAllocHarnessWith(b, withWatch(b)), new(bool)}} {
		b.Run(c.name, func(b *testing.B) {
			if !*c.warm {
				warm(c.h)
				*c.warm = true
			}
			b.ReportAllocs()
			for b.Loop() {
				if st := c.h.do("/reference"); st != 200 {
					b.Fatalf("status %d", st)
				}
			}
		})
	}
}

// BenchmarkWatchPaired sends each iteration's reference request to a server with [watch]
// off and to one with it on, in alternating order, and reports the median latency of each
// and the overhead of the medians: on a shared, noisy machine, paired samples and medians
// compare what separate runs cannot.
func BenchmarkWatchPaired(b *testing.B) {
	off, on := newAllocHarness(b), newAllocHarnessWith(b, withWatch(b))
	warm(off, on)
	n := 0
	var offNs, onNs []int64
	timed := func(h *allocHarness, acc *[]int64) {
		start := time.Now()
		if st := h.do("/reference"); st != 200 {
			b.Fatalf("status %d", st)
		}
		*acc = append(*acc, int64(time.Since(start)))
	}
	for b.Loop() {
		n++
		if n%2 == 0 {
			timed(off, &offNs)
			timed(on, &onNs)
		} else {
			timed(on, &onNs)
			timed(off, &offNs)
		}
	}
	median := func(v []int64) float64 {
		slices.Sort(v)
		return float64(v[len(v)/2])
	}
	mOff, mOn := median(offNs), median(onNs)
	b.ReportMetric(mOff, "off-ns/req")
	b.ReportMetric(mOn, "on-ns/req")
	b.ReportMetric(100*(mOn-mOff)/mOff, "overhead-%")
}
