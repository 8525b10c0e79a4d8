package sqlite

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery"
)

// TestFullDiskStoresNothingItRefused: when a file cannot grow (a full disk; here the
// process's file size limit, RLIMIT_FSIZE, which fails a write past it with EFBIG as a full
// disk fails it with ENOSPC), SQLite rolls the whole transaction back when a batch spills
// its cache. Every enqueue of
// the batch is then answered with an error, and none of them is stored: a write made after
// the rollback would have committed on its own, storing a webhook its sender was told had
// failed and will send again.
func TestFullDiskStoresNothingItRefused(t *testing.T) {
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: 4 << 20, Max: old.Max}); err != nil {
		t.Skipf("cannot limit the file size: %v", err)
	}
	defer func() {
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
			t.Fatal(err)
		}
	}()
	rec := func(size int) *delivery.Record {
		now := time.Now()
		return &delivery.Record{ID: delivery.NewID(), Route: "a", DecisionID: "d", ReceivedAt: now, NextAt: now, Method: "POST", URI: "/", Body: bytes.Repeat([]byte("x"), size)}
	}
	type result struct {
		id  string
		err error
	}
	var mu sync.Mutex
	var small []result
	refused := 0
	for round := 0; round < 5; round++ {
		var wg sync.WaitGroup
		wg.Go(func() { // a fan-out whose bodies spill the cache past what the file may hold
			var rs []*delivery.Record
			for range 12 {
				rs = append(rs, rec(1<<20))
			}
			if s.Enqueue(ctx, rs...) != nil {
				mu.Lock()
				refused++
				mu.Unlock()
			}
		})
		for range 30 {
			wg.Go(func() {
				r := rec(512)
				err := s.Enqueue(ctx, r)
				mu.Lock()
				small = append(small, result{r.ID, err})
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	if refused == 0 {
		t.Fatal("the file never filled up: the test did not test anything")
	}
	failed, storedAnyway := 0, 0
	for _, r := range small {
		_, _, gerr := s.Get(ctx, r.id)
		if r.err != nil {
			failed++
			if gerr == nil {
				storedAnyway++
			}
		} else if gerr != nil {
			t.Errorf("enqueue %s answered ok, then not found: %v", r.id, gerr)
		}
	}
	t.Logf("%d small enqueues, %d refused; %d large refused", len(small), failed, refused)
	if storedAnyway > 0 {
		t.Errorf("%d of %d refused enqueues were stored anyway", storedAnyway, failed)
	}
}
