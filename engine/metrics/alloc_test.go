//go:build !race

package metrics

import (
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/decisionlog"
)

// TestObserverAllocations: once a label combination was seen, the per-request calls cost no
// allocation (the children are cached).
func TestObserverAllocations(t *testing.T) {
	m := New(Sources{})
	call := func() {
		m.Request("github", decisionlog.OutcomeAllowed, 200, time.Millisecond)
		m.Policy("github", time.Microsecond)
		m.Filter("github", "guard", time.Microsecond, "")
		m.Upstream("github", time.Millisecond, false)
		m.State(false)
		m.Shadow("github", true, false)
	}
	call()
	if n := testing.AllocsPerRun(500, call); n != 0 {
		t.Fatalf("%v allocs per request, want 0", n)
	}
}

func BenchmarkObserverRequest(b *testing.B) {
	m := New(Sources{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Request("github", decisionlog.OutcomeAllowed, 200, time.Millisecond)
			m.Policy("github", time.Microsecond)
			m.Upstream("github", time.Millisecond, false)
		}
	})
}
