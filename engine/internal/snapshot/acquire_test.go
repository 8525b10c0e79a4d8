package snapshot

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestClosedSnapshotIsNeverAcquired: a request that loaded a snapshot's pointer before a
// reload released it must not take a reference once its count reached zero (its filters
// and pools are closed then), however many such requests race: one backing off from a
// closed snapshot must not let another through.
func TestClosedSnapshotIsNeverAcquired(t *testing.T) {
	var wrong atomic.Int64
	for range 2000 {
		s := &Snapshot{} // released: refs is zero, the resources closed
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 4 {
			wg.Go(func() {
				<-start
				for range 200 {
					if s.acquire() {
						wrong.Add(1)
						s.refs.Add(-1) // not Release: that would close it again
					}
					runtime.Gosched()
				}
			})
		}
		close(start)
		wg.Wait()
	}
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d acquires of a closed snapshot succeeded", n)
	}
}
