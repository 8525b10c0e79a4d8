package delivery

import (
	"testing"
	"time"
)

// Without retry, a delivery is attempted at once, then after 5s, 5m, 30m, 2h, 5h, 10h and
// 10h, each delay with up to 20% jitter added; after the eighth attempt it is dead. A
// route's retry replaces the schedule whole.
func TestDefaultRetrySchedule(t *testing.T) {
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	got := DefaultRetry()
	if len(got) != len(want) {
		t.Fatalf("DefaultRetry: %v, want %v", got, want)
	}
	for k := 1; k <= len(want); k++ {
		base := want[k-1]
		if got[k-1] != base {
			t.Fatalf("DefaultRetry: %v, want %v", got, want)
		}
		lo, hi := time.Duration(1<<62), time.Duration(0)
		for range 200 {
			d, ok := nextDelay(nil, k)
			if !ok {
				t.Fatalf("after attempt %d: no retry, want one after %v", k, base)
			}
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < base || hi > base+base/5 || hi == lo {
			t.Fatalf("after attempt %d: delays in [%v, %v], want jittered within [%v, %v]", k, lo, hi, base, base+base/5)
		}
	}
	if d, ok := nextDelay(nil, len(want)+1); ok {
		t.Fatalf("after attempt %d: retry in %v, want dead", len(want)+1, d)
	}
	route := []time.Duration{time.Second}
	if d, ok := nextDelay(route, 1); !ok || d < time.Second || d > 1200*time.Millisecond {
		t.Fatalf("route schedule, after attempt 1: %v %v", d, ok)
	}
	if _, ok := nextDelay(route, 2); ok {
		t.Fatal("route schedule of one retry: a third attempt")
	}
	// The caller's copy is its own.
	got[0] = 0
	if DefaultRetry()[0] != 5*time.Second {
		t.Fatal("DefaultRetry shares its array")
	}
}
