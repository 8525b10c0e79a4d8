package gateway

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/sqlite"
)

// slowDepth is a real store whose Depth takes delay longer, counting the reads.
type slowDepth struct {
	delivery.Store
	delay time.Duration
	reads atomic.Int64
}

func (s *slowDepth) Depth(ctx context.Context) ([]delivery.Depth, error) {
	s.reads.Add(1)
	time.Sleep(s.delay)
	return s.Store.Depth(ctx)
}

// A depth that took long is read once for all readers and reused for 20 times as long as it
// took; a quick one is read again for every reader, so a small store's depth is never stale.
func TestDepthCacheReusesOnlySlowAnswers(t *testing.T) {
	st, err := sqlite.Open(sqlite.Options{Path: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ctx := context.Background()
	t0 := time.Now()
	if err := st.Enqueue(ctx, &delivery.Record{ID: "a", Route: "r", ReceivedAt: t0, NextAt: t0, Method: "POST", URI: "/"}); err != nil {
		t.Fatal(err)
	}

	quick := &slowDepth{Store: st}
	qc := &depthCache{store: quick}
	for range 5 {
		if _, err := qc.Depth(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := quick.reads.Load(); n != 5 {
		t.Fatalf("a quick store was read %d times for 5 readers", n)
	}

	slow := &slowDepth{Store: st, delay: 60 * time.Millisecond}
	sc := &depthCache{store: slow}
	start := time.Now()
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			ds, err := sc.Depth(ctx)
			if err != nil || len(ds) != 1 || ds[0].Count != 1 {
				t.Errorf("depth %+v, %v", ds, err)
			}
		})
	}
	wg.Wait()
	if n := slow.reads.Load(); n != 1 {
		t.Fatalf("a slow store was read %d times for 10 readers at once", n)
	}
	if _, err := sc.Depth(ctx); err != nil || slow.reads.Load() != 1 {
		t.Fatalf("read again at once: %d reads, %v", slow.reads.Load(), err)
	}
	// Reused for 20 times the read's own time, at least 20 × 60 ms; then read again.
	sc.mu.Lock()
	until := sc.until
	sc.mu.Unlock()
	if reuse := until.Sub(start); reuse < depthReuse*slow.delay || reuse > depthMaxAge {
		t.Fatalf("reused for %v after a read of over %v", reuse, slow.delay)
	}
	time.Sleep(time.Until(until) + 20*time.Millisecond)
	if _, err := sc.Depth(ctx); err != nil || slow.reads.Load() != 2 {
		t.Fatalf("after its reuse: %d reads, %v", slow.reads.Load(), err)
	}
}
