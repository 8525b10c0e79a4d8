package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery"
)

// Concurrent enqueues share transactions: far fewer commits (fsyncs) than writes.
func TestGroupCommit(t *testing.T) {
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 1000
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r := &delivery.Record{ID: fmt.Sprint(i), Route: "r", Method: "POST", URI: "/", ReceivedAt: time.Now(), NextAt: time.Now()}
			if err := s.Enqueue(context.Background(), r); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	c := s.commits.Load()
	t.Logf("%d enqueues in %d commits", n, c)
	if c == 0 || c > n/4 {
		t.Fatalf("%d enqueues took %d commits: not grouped", n, c)
	}
}

// Opening the file voids the leases of the process that had it: the deliveries it was
// attempting when it died are claimable at once, not after their lease.
func TestOpenVoidsOldLeases(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	r := &delivery.Record{ID: "x", Route: "r", Method: "POST", URI: "/", ReceivedAt: now, NextAt: now}
	if err := s.Enqueue(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Claim(context.Background(), "dead-process", now, time.Hour, 1, delivery.Routes{}); err != nil || len(got) != 1 {
		t.Fatalf("claim: %v %v", got, err)
	}
	s.Close()
	s, err = Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got, err := s.Claim(context.Background(), "next", now, time.Hour, 1, delivery.Routes{}); err != nil || len(got) != 1 {
		t.Fatalf("after reopen: %v %v, want the delivery claimable", got, err)
	}
}

// max_pending is exact under concurrent enqueues that share commits: it is counted once
// per batch, in the writer's transaction.
func TestMaxPendingExactUnderGroupCommit(t *testing.T) {
	const maxPending = 50
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "d.db"), MaxPending: maxPending})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var ok atomic.Int64
	var wg sync.WaitGroup
	for i := range 300 {
		wg.Go(func() {
			r := &delivery.Record{ID: fmt.Sprint(i), Route: "r", Method: "POST", URI: "/", ReceivedAt: time.Now(), NextAt: time.Now()}
			switch err := s.Enqueue(context.Background(), r); {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, delivery.ErrFull):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != maxPending {
		t.Fatalf("%d enqueues accepted with max_pending %d", ok.Load(), maxPending)
	}
	if c := s.commits.Load(); c >= 300/4 {
		t.Fatalf("300 enqueues took %d commits: not grouped, so the exact count was not tested", c)
	}
}
