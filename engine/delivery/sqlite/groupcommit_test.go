package sqlite

import (
	"context"
	"database/sql"
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

// A file from before headers and bodies had a table of their own opens with its
// deliveries whole, claimable and shown by Get, and takes new ones.
func TestOpenMigratesBodies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, q := range []string{
		`CREATE TABLE deliveries (id TEXT PRIMARY KEY, route TEXT NOT NULL, dest INTEGER NOT NULL DEFAULT 0,
			decision_id TEXT NOT NULL, received_at INTEGER NOT NULL, method TEXT NOT NULL, uri TEXT NOT NULL,
			headers BLOB NOT NULL, body BLOB NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
			base INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
			last_status INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', claimed_by TEXT, lease_until INTEGER)`,
		`CREATE INDEX deliveries_due ON deliveries (state, next_at)`,
	} {
		if _, err := old.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	hs := delivery.EncodeHeaders([]delivery.Header{{Name: "X-Old", Value: "1"}})
	if _, err := old.Exec(`INSERT INTO deliveries (id, route, decision_id, received_at, method, uri, headers, body, state, next_at, updated_at, claimed_by, lease_until)
		VALUES ('old', 'r', 'dec', ?1, 'POST', '/x', ?2, 'old body', 'pending', ?1, ?1, 'dead-process', ?3)`, now.UnixNano(), hs, now.Add(time.Hour).UnixNano()); err != nil {
		t.Fatal(err)
	}
	old.Close()
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, _, err := s.Get(context.Background(), "old")
	if err != nil || string(r.Body) != "old body" || len(r.Headers) != 1 || r.Headers[0].Name != "X-Old" {
		t.Fatalf("the old delivery after the migration: %+v, %v", r, err)
	}
	if err := s.Enqueue(context.Background(), &delivery.Record{ID: "new", Route: "r", Method: "POST", URI: "/", Body: []byte("new body"), ReceivedAt: now, NextAt: now}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Claim(context.Background(), "w", now, time.Minute, 10, delivery.Routes{})
	if err != nil || len(got) != 2 {
		t.Fatalf("claim after the migration: %d records, %v", len(got), err)
	}
	for _, r := range got {
		if want := map[string]string{"old": "old body", "new": "new body"}[r.ID]; string(r.Body) != want {
			t.Errorf("claimed %s with body %q, want %q", r.ID, r.Body, want)
		}
	}
}

// The writer's statement journals (a batch's savepoints) stay in memory: on a temporary
// file, past 64 KB, a batch of webhooks wrote its pages a second time, to that file.
func TestWriterJournalsInMemory(t *testing.T) {
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var store int
	if err := s.w.QueryRow(`PRAGMA temp_store`).Scan(&store); err != nil || store != 2 {
		t.Fatalf("the writer's temp_store is %d (%v), want 2 (memory)", store, err)
	}
}
