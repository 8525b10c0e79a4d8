//go:build !race

package server

import (
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/policy"
)

// TestCrossCheckSampleIsFree: the request path's part of the cross-check, the sampling
// decision, takes no allocation (and no lock: it is a draw from the runtime's per-thread
// generator).
func TestCrossCheckSampleIsFree(t *testing.T) {
	picked := 0
	allocs := testing.AllocsPerRun(100000, func() {
		if policy.Sample(0.01) {
			picked++
		}
	})
	if allocs != 0 {
		t.Errorf("sampling allocates %v per request", allocs)
	}
	// 100001 draws at 1%: a share outside 0.5%..1.5% is far beyond chance.
	if picked < 500 || picked > 1500 {
		t.Errorf("sampled %d of 100001 at 1%%", picked)
	}
	if policy.Sample(0) {
		t.Error("cross_check = 0 sampled a request")
	}
}

// BenchmarkCrossCheck is the request path's cost of the cross-check: the reference route
// with cross_check = 0 and at the default 0.01, in one run (allocations include the sampled
// requests' topdown evaluations, which run in the background).
func BenchmarkCrossCheck(b *testing.B) {
	for _, rate := range []string{"0", "0.01"} {
		h := newAllocHarness(b, "cross_check = "+rate)
		b.Run("cross_check="+strings.ReplaceAll(rate, ".", "_"), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if st := h.do("/reference"); st != 200 {
					b.Fatalf("status %d", st)
				}
			}
		})
	}
}
