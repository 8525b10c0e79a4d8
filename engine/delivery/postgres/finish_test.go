package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/postgres/pgtest"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)

// open returns a store in a new database, with n deliveries g0…g(n-1) and "held" enqueued
// and claimed by w.
func open(t *testing.T, n int) (*Store, string) {
	t.Helper()
	url := pgtest.Start(t).NewDatabase(t)
	ctx := context.Background()
	s, err := Open(ctx, Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	rs := []*delivery.Record{{ID: "held", Route: "r", ReceivedAt: t0, NextAt: t0, Method: "POST", URI: "/"}}
	for i := range n {
		rs = append(rs, &delivery.Record{ID: fmt.Sprint("g", i), Route: "r", ReceivedAt: t0, NextAt: t0, Method: "POST", URI: "/"})
	}
	if err := s.Enqueue(ctx, rs...); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Claim(ctx, "w", t0, time.Minute, n+1, delivery.Routes{}); err != nil || len(got) != n+1 {
		t.Fatalf("claimed %d of %d: %v", len(got), n+1, err)
	}
	return s, url
}

// delivered is a first attempt that delivered, numbered i in its status and error.
func delivered(i int) delivery.Result {
	return delivery.Result{Attempt: delivery.Attempt{N: 1, At: t0, Status: 200 + i, Latency: time.Millisecond, Error: fmt.Sprint("e", i)}, State: delivery.StateDelivered}
}

// grouped makes the finishes fs at once, queued behind a finish of "held" that waits on a
// row lock the test holds, so that they reach the finisher together, as one group. It
// returns their answers and how many statements the store made for them and "held".
func grouped(t *testing.T, s *Store, url string, fs []*fin) ([]error, int64) {
	t.Helper()
	ctx := context.Background()
	locker := pgtest.Connect(t, url)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM hookwall_deliveries WHERE id = 'held' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	commits0 := s.commits.Load()
	heldErr := make(chan error, 1)
	go func() { heldErr <- s.Finish(ctx, "held", "w", delivered(0)) }()
	testutil.WaitUntil(t, 10*time.Second, "the finish of held to wait on its row lock", func() bool {
		var n int
		err := locker.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return err == nil && n == 1
	})
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for i, f := range fs {
		wg.Go(func() { errs[i] = s.Finish(f.ctx, f.id, f.owner, f.res) })
	}
	testutil.WaitUntil(t, 10*time.Second, "the finishes to queue", func() bool { return len(s.fins.C) == len(fs) })
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := <-heldErr; err != nil {
		t.Fatalf("finish of held: %v", err)
	}
	return errs, s.commits.Load() - commits0
}

// xacts counts the transactions that wrote the deliveries ids names and their attempts, as
// the server recorded them (xmin: the writing transaction).
func xacts(t *testing.T, s *Store, ids []string) int {
	t.Helper()
	var n int
	err := s.pool.QueryRow(context.Background(), `SELECT count(DISTINCT x) FROM (
		SELECT xmin::text AS x FROM hookwall_delivery_attempts WHERE delivery_id = ANY($1)
		UNION ALL SELECT xmin::text FROM hookwall_deliveries WHERE id = ANY($1)) t`, ids).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// check fails t unless id is in state with its attempt recorded (made), or pending,
// leased to w, with none (not made).
func check(t *testing.T, s *Store, id string, made bool, res delivery.Result) {
	t.Helper()
	r, as, err := s.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var owner *string
	if err := s.pool.QueryRow(context.Background(), `SELECT claimed_by FROM hookwall_deliveries WHERE id = $1`, id).Scan(&owner); err != nil {
		t.Fatal(err)
	}
	if !made {
		if r.State != delivery.StatePending || r.Attempts != 0 || len(as) != 0 || owner == nil || *owner != "w" {
			t.Errorf("%s was not to be made: %s, %d attempts, %d recorded, leased to %v", id, r.State, r.Attempts, len(as), owner)
		}
		return
	}
	a := res.Attempt
	if r.State != res.State || r.Attempts != 1 || r.LastStatus != a.Status || len(as) != 1 || as[0].Status != a.Status || as[0].Error != a.Error || owner != nil {
		t.Errorf("%s: %s, %d attempts, last %d, attempts %+v, leased to %v; want %s and its attempt %+v", id, r.State, r.Attempts, r.LastStatus, as, owner, res.State, a)
	}
}

// Concurrent finishes go to PostgreSQL together: one statement, one transaction, one
// commit for all of them, each recorded as its own.
func TestConcurrentFinishesShareACommit(t *testing.T) {
	const n = 40
	s, url := open(t, n)
	var fs []*fin
	var ids []string
	for i := range n {
		f := &fin{ctx: context.Background(), id: fmt.Sprint("g", i), owner: "w", res: delivered(i)}
		if i%2 == 1 {
			f.res.State, f.res.NextAt = delivery.StatePending, t0.Add(time.Hour)
		}
		fs, ids = append(fs, f), append(ids, f.id)
	}
	errs, commits := grouped(t, s, url, fs)
	for i, err := range errs {
		if err != nil {
			t.Errorf("finish g%d: %v", i, err)
		}
	}
	if commits != 2 || xacts(t, s, ids) != 1 {
		t.Fatalf("%d finishes took %d statements after the held one's and %d transactions; want 1 and 1", n, commits-1, xacts(t, s, ids))
	}
	for i, f := range fs {
		check(t, s, ids[i], true, f.res)
	}
}

// In a group, a finish whose lease is lost (another owner, the delivery finished by the
// same group already), or whose context ended before the group, is not made and is told
// so; the others are made, in the group's one transaction.
func TestGroupedFinishLostLeaseFailsAlone(t *testing.T) {
	const n = 20
	s, url := open(t, n)
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	var fs []*fin
	var ids []string
	for i := range n {
		f := &fin{ctx: context.Background(), id: fmt.Sprint("g", i), owner: "w", res: delivered(i)}
		switch i {
		case 3:
			f.owner = "intruder"
		case 8:
			f.ctx = ended
		}
		fs = append(fs, f)
		if i != 3 && i != 8 {
			ids = append(ids, f.id)
		}
	}
	fs = append(fs, &fin{ctx: context.Background(), id: "g5", owner: "w", res: delivered(99)}) // g5 twice
	errs, commits := grouped(t, s, url, fs)
	for i, err := range errs[:n] {
		var want error
		switch i {
		case 3:
			want = delivery.ErrLeaseLost
		case 5: // either of its two finishes may come first: one is made, the other lost
			if (err == nil) == (errs[n] == nil) || !errors.Is(errors.Join(err, errs[n]), delivery.ErrLeaseLost) {
				t.Errorf("g5 finished twice in the group: %v and %v, want one nil and one ErrLeaseLost", err, errs[n])
			}
			if err != nil {
				fs[5] = fs[n] // the one made, to check below
			}
			continue
		case 8:
			want = context.Canceled
		}
		if !errors.Is(err, want) {
			t.Errorf("finish g%d: %v, want %v", i, err, want)
		}
	}
	// held, the group, and the second g5 alone.
	if commits != 3 || xacts(t, s, ids) != 1 {
		t.Fatalf("%d statements and %d transactions for the group; want 3 (held, the group, g5 again) and 1", commits, xacts(t, s, ids))
	}
	for i, f := range fs[:n] {
		check(t, s, f.id, i != 3 && i != 8, f.res)
	}
}

// A group whose statement fails (one attempt's error PostgreSQL cannot store) is made
// again one finish at a time: the failing finish fails alone, writing nothing, and every
// other is made.
func TestGroupedFinishOneFailingAnswersTheOthers(t *testing.T) {
	const n = 12
	s, url := open(t, n)
	var fs []*fin
	for i := range n {
		f := &fin{ctx: context.Background(), id: fmt.Sprint("g", i), owner: "w", res: delivered(i)}
		if i == 5 {
			f.res.Attempt.Error = "a NUL \x00 byte" // text rejects it
		}
		fs = append(fs, f)
	}
	errs, commits := grouped(t, s, url, fs)
	for i, err := range errs {
		if (i == 5) != (err != nil) || errors.Is(err, delivery.ErrLeaseLost) {
			t.Errorf("finish g%d: %v", i, err)
		}
	}
	if commits != 1+n-1 {
		t.Errorf("%d statements made, want %d (held, then each alone but the failing one)", commits, n)
	}
	for i, f := range fs {
		check(t, s, f.id, i != 5, f.res)
	}
}
