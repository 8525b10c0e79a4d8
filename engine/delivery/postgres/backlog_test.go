package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/postgres/pgtest"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// backlog opens a store on url and enqueues n due deliveries of route r.
func backlog(t *testing.T, url string, maxPending, n int) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{URL: url, MaxPending: maxPending})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	fill(t, s, n)
	return s
}

// fill enqueues n due deliveries of route r, 2 KB each, in groups.
func fill(t *testing.T, s *Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i += maxEnqueueBatch {
		var rs []*delivery.Record
		for j := i; j < min(n, i+maxEnqueueBatch); j++ {
			rs = append(rs, &delivery.Record{ID: fmt.Sprint("b", j), Route: "r", ReceivedAt: t0, NextAt: t0.Add(time.Duration(j)), Method: "POST", URI: "/", Body: make([]byte, 2048)})
		}
		if err := s.Enqueue(ctx, rs...); err != nil {
			t.Fatal(err)
		}
	}
}

// rowsRead is the most rows any node of an EXPLAIN (ANALYZE, FORMAT JSON) plan produced.
func rowsRead(t *testing.T, plan []byte) float64 {
	t.Helper()
	var doc []struct{ Plan map[string]any }
	if err := json.Unmarshal(plan, &doc); err != nil || len(doc) != 1 {
		t.Fatalf("plan %s: %v", plan, err)
	}
	var most float64
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		rows, _ := n["Actual Rows"].(float64)
		loops, _ := n["Actual Loops"].(float64)
		most = max(most, rows*loops)
		kids, _ := n["Plans"].([]any)
		for _, k := range kids {
			if m, ok := k.(map[string]any); ok {
				walk(m)
			}
		}
	}
	walk(doc[0].Plan)
	return most
}

// A claim reads the due deliveries in order from the index and stops at its limit, and a
// finish finds its rows by primary key, however long the backlog, on connections set as
// the store sets its own. Both with statistics and without: in "prepared on an empty
// table" the statements were prepared and run six times before the backlog came (a
// generic plan would be made then) and the table was never analyzed. Before, the claim
// joined the skipped destinations and so read and sorted every pending row (3,000 here), a
// generic claim or finish made on the empty table scanned the whole table, and a claim
// planned without statistics read every due row through a bitmap and sorted them.
func TestClaimAndFinishReadOnlyTheirRows(t *testing.T) {
	const n = 3000
	srv := pgtest.Start(t)
	for _, analyzed := range []bool{true, false} {
		name := "analyzed"
		if !analyzed {
			name = "prepared on an empty table"
		}
		t.Run(name, func(t *testing.T) {
			url := srv.NewDatabase(t)
			s := backlog(t, url, 0, 0)
			ctx := context.Background()
			lc, pc := pgtest.Connect(t, url, planParams, leaseParams), pgtest.Connect(t, url, planParams)
			exec := func(c *pgx.Conn, sql string) {
				t.Helper()
				if _, err := c.Exec(ctx, sql); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			exec(pc, `ALTER TABLE hookwall_deliveries SET (autovacuum_enabled = false)`)
			exec(lc, `PREPARE claim AS `+claimSQL)
			exec(pc, `PREPARE finish AS `+finishSQL)
			now := t0.Add(time.Hour).UnixNano()
			// EXECUTE takes no bind parameters: the values are written in.
			claim := fmt.Sprintf(`EXECUTE claim('w', %d, %d, 16, ARRAY['%s'], ARRAY['ordered'], ARRAY['busy'])`, now+int64(time.Minute), now, destKey("other", 1))
			finish := func(ids ...string) string {
				k := len(ids)
				list := func(v string) string { return "ARRAY[" + strings.TrimSuffix(strings.Repeat(v+",", k), ",") + "]" }
				return fmt.Sprintf(`EXECUTE finish(ARRAY['%s'], %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)`, strings.Join(ids, "','"),
					list("'w'"), list("'delivered'"), list("1"), list("0"), list("1"), list("200"), list("''"), list("1"), list("1"), list("0"))
			}
			if !analyzed {
				for range 6 {
					exec(lc, claim)
					exec(pc, finish("none"))
				}
			}
			fill(t, s, n)
			if analyzed {
				exec(pc, `ANALYZE hookwall_deliveries`)
			}
			held, err := s.Claim(ctx, "w", t0.Add(time.Hour), time.Hour, 2, delivery.Routes{})
			if err != nil || len(held) != 2 {
				t.Fatalf("claimed %d: %v", len(held), err)
			}
			for _, q := range []struct {
				c    *pgx.Conn
				what string
			}{{lc, claim}, {pc, finish(held[0].ID, held[1].ID)}} {
				tx, err := q.c.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var plan []byte
				err = tx.QueryRow(ctx, `EXPLAIN (ANALYZE, FORMAT JSON) `+q.what).Scan(&plan)
				_ = tx.Rollback(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if got := rowsRead(t, plan); got > 64 {
					t.Errorf("%s over a backlog of %d read %.0f rows:\n%s", q.what, n, got, plan)
				}
			}
		})
	}
}

// An enqueue far below max_pending does not count the pending rows: a count in the
// background at most once a second, plus what this gateway made pending since, says there
// is room. Near the bound each insert counts, so one gateway stops exactly at it, and so
// does a second one sharing the database, whose estimate starts from its own count.
func TestEnqueueCountsOnlyNearTheBound(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx := context.Background()
	one := func(s *Store, id string) error {
		return s.Enqueue(ctx, &delivery.Record{ID: id, Route: "r", ReceivedAt: t0, NextAt: t0, Method: "POST", URI: "/"})
	}

	far := backlog(t, url, 1_000_000, 1)
	testutil.WaitUntil(t, 10*time.Second, "the first count", func() bool {
		far.pending.mu.Lock()
		defer far.pending.mu.Unlock()
		return far.pending.taken > 0
	})
	counted := far.counted.Load()
	start := time.Now()
	for i := range 300 {
		if err := one(far, fmt.Sprint("far", i)); err != nil {
			t.Fatal(err)
		}
	}
	if got := far.counted.Load() - counted; got != 0 {
		t.Fatalf("%d of 300 inserts far below max_pending counted the pending rows", got)
	}
	far.pending.mu.Lock()
	taken, est := far.pending.taken, far.pending.n+far.pending.since
	far.pending.mu.Unlock()
	if limit := 2 + int64(time.Since(start)/countEvery); taken > limit {
		t.Fatalf("%d counts in %v, want at most %d", taken, time.Since(start), limit)
	}
	if est < 301 {
		t.Fatalf("estimate %d below the 301 deliveries pending", est)
	}

	// Two gateways, max_pending 401: the first fills to 361, the second may add 40 only.
	a, b := backlog(t, url, 401, 0), backlog(t, url, 401, 0)
	for i := range 60 {
		if err := one(a, fmt.Sprint("a", i)); err != nil {
			t.Fatal(err)
		}
	}
	stored := 0
	for i := range 60 {
		switch err := one(b, fmt.Sprint("second", i)); {
		case err == nil:
			stored++
		case !errors.Is(err, delivery.ErrFull):
			t.Fatal(err)
		}
	}
	if stored != 40 {
		t.Fatalf("the second gateway stored %d, want the 40 left under max_pending", stored)
	}
}

// The store's connections run with the settings it gives them: every statement planned
// for its values without JIT compilation; the claims' commits, and only theirs, not
// waiting for the disk, and their planner reading indexes. The database's own default of
// synchronous_commit = off does not reach the enqueues: a 202 is a commit on disk.
func TestConnectionsCarryTheirSettings(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	s := backlog(t, url, 0, 0)
	type querier interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}
	for _, c := range []struct {
		name string
		q    querier
		want map[string]string
	}{
		{"pool", s.pool, map[string]string{"plan_cache_mode": "force_custom_plan", "jit": "off", "synchronous_commit": "on", "enable_seqscan": "on"}},
		{"leases", s.leases, map[string]string{"plan_cache_mode": "force_custom_plan", "jit": "off", "synchronous_commit": "off", "enable_seqscan": "off", "enable_bitmapscan": "off"}},
	} {
		for k, want := range c.want {
			var got string
			if err := c.q.QueryRow(ctx, `SELECT current_setting($1)`, k).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%s: %s = %q, want %q", c.name, k, got, want)
			}
		}
	}
}
