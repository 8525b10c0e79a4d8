package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/postgres/pgtest"
)

// orderedRace opens a store on a new database holding b (received second) and a
// (received first) of the ordered route "o", and a connection beside it that has begun a
// transaction leasing b to gw1, uncommitted: another gateway's claim that took b, the head
// it saw before a was stored, and has not committed yet.
func orderedRace(t *testing.T) (*Store, func(sql string, args ...any)) {
	t.Helper()
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	ctx := context.Background()
	s, err := Open(ctx, Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	rec := func(id string, received time.Time) *delivery.Record {
		return &delivery.Record{ID: id, Route: "o", ReceivedAt: received, NextAt: received, Method: "POST", URI: "/", Body: []byte(id)}
	}
	if err := s.Enqueue(ctx, rec("b", t0.Add(time.Second)), rec("a", t0)); err != nil {
		t.Fatal(err)
	}
	c := pgtest.Connect(t, url)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := tx.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE hookwall_deliveries SET claimed_by = 'gw1', lease_until = $1 WHERE id = 'b'`, t0.Add(time.Hour).UnixNano())
	return s, exec
}

// liveLeases returns the ids leased (live at t0+2s) and their owners.
func liveLeases(t *testing.T, s *Store) string {
	t.Helper()
	rows, err := s.pool.Query(context.Background(), `SELECT id, claimed_by FROM hookwall_deliveries
		WHERE claimed_by IS NOT NULL AND lease_until >= $1 ORDER BY id`, t0.Add(2*time.Second).UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, owner string
		if err := rows.Scan(&id, &owner); err != nil {
			t.Fatal(err)
		}
		out = append(out, id+":"+owner)
	}
	return fmt.Sprint(out)
}

var orderedO = delivery.Routes{Ordered: []string{"o"}}

// Two gateways' claims of one ordered destination run together, neither seeing the other's
// lease: gw1's (uncommitted) took b, and is checking it, holding the destination's lock;
// gw2's claim takes a, the head it sees, and waits for gw1's check to end. gw1 keeps b, so
// gw2 gives a back: one delivery of the destination in an attempt, not two.
func TestOrderedConcurrentClaimGivesBack(t *testing.T) {
	s, exec := orderedRace(t)
	exec(`SELECT pg_advisory_xact_lock($1, hashtext('0:o'))`, orderedLockSpace)
	type claimed struct {
		rs  []*delivery.Record
		err error
	}
	done := make(chan claimed, 1)
	go func() {
		rs, err := s.Claim(context.Background(), "gw2", t0.Add(2*time.Second), time.Hour, 8, orderedO)
		done <- claimed{rs, err}
	}()
	// gw2's claim has committed its lease on a and waits for gw1's check.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting int
		if err := s.pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting > 0 {
			break
		}
		select {
		case c := <-done:
			t.Fatalf("gw2's claim ended before gw1's check did: %v %v (leases %s)", claimedIDs(c.rs), c.err, liveLeases(t, s))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("gw2's claim never waited for gw1's check")
		}
		time.Sleep(5 * time.Millisecond)
	}
	exec(`COMMIT`)
	c := <-done
	if c.err != nil {
		t.Fatal(c.err)
	}
	if len(c.rs) != 0 {
		t.Fatalf("gw2 claimed %v while gw1 holds b", claimedIDs(c.rs))
	}
	if got := liveLeases(t, s); got != "[b:gw1]" {
		t.Fatalf("leases %s, want [b:gw1]", got)
	}
}

// The other order: gw2's claim takes a and checks it before gw1's claim of b commits, so
// gw2 keeps a; gw1's check then gives b back.
func TestOrderedConcurrentClaimFirstCheckWins(t *testing.T) {
	s, exec := orderedRace(t)
	now := t0.Add(2 * time.Second)
	rs, err := s.Claim(context.Background(), "gw2", now, time.Hour, 8, orderedO)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(claimedIDs(rs)) != "[a]" {
		t.Fatalf("gw2 claimed %v, want [a]", claimedIDs(rs))
	}
	exec(`COMMIT`)
	lost, err := s.checkOrdered(context.Background(), "gw1", now.UnixNano(), t0.Add(time.Hour).UnixNano(), []string{"0:o"}, []string{"b"})
	if err != nil {
		t.Fatal(err)
	}
	if !lost["b"] || len(lost) != 1 {
		t.Fatalf("gw1's check gave back %v, want b", lost)
	}
	if got := liveLeases(t, s); got != "[a:gw2]" {
		t.Fatalf("leases %s, want [a:gw2]", got)
	}
}

func claimedIDs(rs []*delivery.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}
