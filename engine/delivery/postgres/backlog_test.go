package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	ctx := context.Background()
	s, err := Open(ctx, Options{URL: url, MaxPending: maxPending})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for i := 0; i < n; i += maxEnqueueBatch {
		var rs []*delivery.Record
		for j := i; j < min(n, i+maxEnqueueBatch); j++ {
			rs = append(rs, &delivery.Record{ID: fmt.Sprint("b", j), Route: "r", ReceivedAt: t0, NextAt: t0.Add(time.Duration(j)), Method: "POST", URI: "/", Body: make([]byte, 2048)})
		}
		if err := s.Enqueue(ctx, rs...); err != nil {
			t.Fatal(err)
		}
	}
	return s
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

// A claim reads the due deliveries in order from the index and stops at its limit, however
// long the backlog, with a destination skipped and an ordered route named, and with the
// generic plan PostgreSQL uses for a statement prepared and run many times (as pgx does).
// The claim before it joined the skipped destinations and so read and sorted every
// pending row: 3,000 of them here, at each claim.
func TestClaimReadsTheDueIndexNotTheBacklog(t *testing.T) {
	const n = 3000
	url := pgtest.Start(t).NewDatabase(t)
	backlog(t, url, 0, n)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `ANALYZE hookwall_deliveries`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `PREPARE claim(text, bigint, bigint, int, text[], text[]) AS `+claimSQL); err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Hour).UnixNano()
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `SET LOCAL plan_cache_mode = `+mode); err != nil {
			t.Fatal(err)
		}
		var plan []byte
		// EXECUTE takes no bind parameters: the values are written in.
		err = tx.QueryRow(ctx, fmt.Sprintf(`EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE claim('w', %d, %d, 16, ARRAY['%s'], ARRAY['ordered'])`, now+int64(time.Minute), now, destKey("other", 1))).Scan(&plan)
		_ = tx.Rollback(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := rowsRead(t, plan); got > 64 {
			t.Errorf("%s: a claim of 16 from a backlog of %d read %.0f rows:\n%s", mode, n, got, plan)
		}
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
