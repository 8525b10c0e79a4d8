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
	"github.com/hookwall/hookwall/engine/internal/testutil"
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

// openWindowed opens a store that reads arrivals, with a group window and a quiet period of
// an hour: a batch that waited for either would not commit within the test.
func openWindowed(t *testing.T, arrivals *delivery.Arrivals) *Store {
	t.Helper()
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "d.db"), Arrivals: arrivals})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.window, s.quiet = time.Hour, time.Hour
	return s
}

// enqueueAsync enqueues a record under id and reports its answer on the channel returned.
func enqueueAsync(s *Store, id string) <-chan error {
	done := make(chan error, 1)
	go func() {
		now := time.Now()
		done <- s.Enqueue(context.Background(), &delivery.Record{ID: id, Route: "r", Method: "POST", URI: "/", ReceivedAt: now, NextAt: now})
	}()
	return done
}

// answered waits for an enqueue's answer; a write the writer holds back fails the test.
func answered(t *testing.T, what string, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not committed: the writer is waiting for writes nobody is sending", what)
	}
}

// With no request on its way, a batch under load commits after its settle, without waiting
// for a quiet period: the writer knows nothing more is coming.
func TestWriterCommitsWhenNothingIsComing(t *testing.T) {
	s := openWindowed(t, &delivery.Arrivals{})
	// Load: three enqueues wait while the writer is held in a write, so they share the
	// next commit, and the writer is then "busy" (its last batch was shared).
	held, release := holdWriter(t, s)
	<-held
	var burst []<-chan error
	for i := range 3 {
		burst = append(burst, enqueueAsync(s, fmt.Sprint("burst-", i)))
	}
	testutil.WaitFor(t, func() bool { return len(s.ops.C) == 3 })
	answered(t, "the held write", release())
	for _, d := range burst {
		answered(t, "a burst's enqueue", d)
	}
	before := s.commits.Load()
	answered(t, "a lone enqueue after the burst", enqueueAsync(s, "lone"))
	if got := s.commits.Load() - before; got != 1 {
		t.Fatalf("the lone enqueue took %d commits, want 1", got)
	}
}

// A request on its way holds the batch for its write: the write already waiting and the
// one that comes share one commit.
func TestWriterWaitsForAWriteThatIsComing(t *testing.T) {
	arrivals := &delivery.Arrivals{}
	s := openWindowed(t, arrivals)
	// The writer is held in a write while the first enqueue comes, so the first is the
	// next batch's first write, whatever the scheduling.
	held, release := holdWriter(t, s)
	<-held
	arrivals.Begin() // a request is on its way
	first := enqueueAsync(s, "first")
	testutil.WaitFor(t, func() bool { return len(s.ops.C) == 1 })
	answered(t, "the held write", release())
	before := s.commits.Load()
	time.Sleep(50 * time.Millisecond)
	select {
	case err := <-first:
		t.Fatalf("the first enqueue was answered (%v) while a write was coming: %d commits", err, s.commits.Load()-before)
	default:
	}
	arrivals.End() // it submits its enqueue
	answered(t, "the coming enqueue", enqueueAsync(s, "second"))
	answered(t, "the first enqueue", first)
	if got := s.commits.Load() - before; got != 1 {
		t.Fatalf("the two enqueues took %d commits, want 1 (the first waited for the second)", got)
	}
}

// holdWriter sends a write that holds the writer in its transaction: held is closed once
// it is there; release lets it commit and returns the write's answer.
func holdWriter(t *testing.T, s *Store) (held <-chan struct{}, release func() <-chan error) {
	t.Helper()
	h, r := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(*sql.Tx) error { close(h); <-r; return nil })
	}()
	return h, func() <-chan error { close(r); return done }
}
