package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/postgres/pgtest"
)

// A crash of the PostgreSQL server keeps every enqueue and finish that returned (checked
// by crashing it again right after some), and may undo the last leases, whose commits do not wait for the write-ahead log. A delivery whose
// lease it undid is claimable again and its holder's finish fails with ErrLeaseLost; one
// whose lease it kept is finished by its holder. Either way every delivery is delivered
// once, and the store works on without being opened again: a statement sent on a
// connection the crash ended fails, and the next one gets a new connection.
func TestServerCrashKeepsWhatWasAnswered(t *testing.T) {
	const n = 90 // thirds: finished before the crash, leased before a finish, leased last
	srv := pgtest.Start(t)
	// The WAL writer writes a commit that did not wait for it within about 200 ms by
	// default; held off for 10 s, the last leases are still unwritten at the crash.
	srv.Set(t, map[string]string{"wal_writer_delay": "10s"})
	url := srv.NewDatabase(t)
	ctx := context.Background()
	s, err := Open(ctx, Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })

	var rs []*delivery.Record
	for i := range n {
		rs = append(rs, &delivery.Record{ID: fmt.Sprintf("c%02d", i), Route: "r", ReceivedAt: t0, NextAt: t0.Add(time.Duration(i)), Method: "POST", URI: "/", Body: fmt.Appendf(nil, "body %d", i)})
	}
	if err := s.Enqueue(ctx, rs...); err != nil {
		t.Fatal(err)
	}
	claim := func(owner string, limit int) []*delivery.Record {
		t.Helper()
		got, err := s.Claim(ctx, owner, t0.Add(time.Hour), time.Hour, limit, delivery.Routes{})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := claim("w", 2*n/3)
	if len(first) != 2*n/3 {
		t.Fatalf("claimed %d, want %d", len(first), 2*n/3)
	}
	for i, r := range first[:n/3] {
		if err := s.Finish(ctx, r.ID, "w", delivered(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The finishes' commits wrote the first leases with them; nothing writes these.
	second := claim("w", n)
	if len(second) != n/3 {
		t.Fatalf("claimed %d more, want %d", len(second), n/3)
	}

	conns := int(s.pool.Stat().MaxConns() + s.leases.Stat().MaxConns())
	srv.Crash(t)

	// A statement on a connection the crash ended fails, once per connection the store's
	// two pools held; anything else is the store's answer.
	stale := 0
	answer := func(op func() error) error {
		t.Helper()
		for {
			err := op()
			if err == nil || errors.Is(err, delivery.ErrLeaseLost) || errors.Is(err, delivery.ErrNotFound) {
				return err
			}
			if stale++; stale > conns {
				t.Fatalf("after the crash, %d statements failed: %v", stale, err)
			}
		}
	}
	for _, r := range first[:n/3] {
		var got *delivery.Record
		var a []delivery.Attempt
		if err := answer(func() (err error) { got, a, err = s.Get(ctx, r.ID); return err }); err != nil {
			t.Fatal(err)
		}
		if got.State != delivery.StateDelivered || len(a) != 1 {
			t.Errorf("%s, finished before the crash: %s with %d attempts after it, want delivered with 1", r.ID, got.State, len(a))
		}
	}
	for i, r := range first[n/3:] {
		if err := answer(func() error { return s.Finish(ctx, r.ID, "w", delivered(i)) }); err != nil {
			t.Errorf("%s, leased before a finish was committed: finish after the crash: %v", r.ID, err)
		}
	}
	undone := map[string]bool{}
	for i, r := range second {
		switch err := answer(func() error { return s.Finish(ctx, r.ID, "w", delivered(i)) }); {
		case errors.Is(err, delivery.ErrLeaseLost):
			undone[r.ID] = true
		case err != nil:
			t.Fatal(err)
		}
	}
	var again []*delivery.Record
	if err := answer(func() (err error) {
		again, err = s.Claim(ctx, "w2", t0.Add(time.Hour), time.Hour, n, delivery.Routes{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(again) != len(undone) {
		t.Errorf("claimable after the crash: %d, want the %d whose leases it undid", len(again), len(undone))
	}
	for i, r := range again {
		if !undone[r.ID] {
			t.Errorf("%s claimable again, but its holder finished it", r.ID)
		}
		if err := answer(func() error { return s.Finish(ctx, r.ID, "w2", delivered(i)) }); err != nil {
			t.Fatal(err)
		}
	}
	// What returned before a crash is kept: the finishes just made, and an enqueue.
	var more []*delivery.Record
	for i := range n / 3 {
		more = append(more, &delivery.Record{ID: fmt.Sprintf("m%02d", i), Route: "r", ReceivedAt: t0, NextAt: t0, Method: "POST", URI: "/"})
	}
	if err := answer(func() error { return s.Enqueue(ctx, more...) }); err != nil {
		t.Fatal(err)
	}
	srv.Crash(t)
	var depth []delivery.Depth
	if err := answer(func() (err error) { depth, err = s.Depth(ctx); return err }); err != nil {
		t.Fatal(err)
	}
	counts := map[delivery.State]int{}
	for _, d := range depth {
		counts[d.State] += d.Count
	}
	if counts[delivery.StateDelivered] != n || counts[delivery.StatePending] != len(more) || len(counts) != 2 {
		t.Fatalf("after a second crash: %v, want %d delivered and %d pending", counts, n, len(more))
	}
	t.Logf("the crash undid %d of the last %d leases; %d statements failed on connections a crash ended", len(undone), len(second), stale)
}
