package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/postgres"
	"github.com/hookwall/hookwall/engine/delivery/postgres/pgtest"
)

// TestPruneSparesADeliveryReplayedMeanwhile: a delivered delivery is replayed (made pending
// again, Replay's own UPDATE, held open in a transaction) while a prune of old deliveries
// reaches its row. Under READ COMMITTED a DELETE … WHERE id IN (SELECT …) re-checks only the
// join, not the row's new state, and deleted the delivery whose replay had been answered;
// the prune must judge the row as it is when it deletes it.
func TestPruneSparesADeliveryReplayedMeanwhile(t *testing.T) {
	srv := pgtest.Start(t)
	url := srv.NewDatabase(t)
	ctx := context.Background()
	s, err := postgres.Open(ctx, postgres.Options{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old := time.Now().Add(-48 * time.Hour)
	r := &delivery.Record{ID: delivery.NewID(), Route: "r", DecisionID: "d", ReceivedAt: old, Method: "POST", URI: "/", Body: []byte("x"), NextAt: old}
	if err := s.Enqueue(ctx, r); err != nil {
		t.Fatal(err)
	}
	if rs, err := s.Claim(ctx, "o", time.Now(), time.Minute, 10, delivery.Routes{}); err != nil || len(rs) != 1 {
		t.Fatalf("claim: %d records, %v", len(rs), err)
	}
	if err := s.Finish(ctx, r.ID, "o", delivery.Result{Attempt: delivery.Attempt{N: 1, At: old, Status: 200}, State: delivery.StateDelivered}); err != nil {
		t.Fatal(err)
	}
	// Back-date the delivered row so the prune below takes it.
	c := pgtest.Connect(t, url)
	if _, err := c.Exec(ctx, `UPDATE hookwall_deliveries SET updated_at = $2 WHERE id = $1`, r.ID, old.UnixNano()); err != nil {
		t.Fatal(err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixNano()
	if _, err := tx.Exec(ctx, `UPDATE hookwall_deliveries SET state = 'pending', base = attempts, next_at = $2, updated_at = $2
		WHERE id = $1 AND (state <> 'pending' OR claimed_by IS NULL)`, r.ID, now); err != nil {
		t.Fatal(err)
	}
	pruned := make(chan int, 1)
	go func() {
		cut := time.Now().Add(-24 * time.Hour)
		n, err := s.Prune(ctx, cut, cut)
		if err != nil {
			t.Error(err)
		}
		pruned <- n
	}()
	time.Sleep(300 * time.Millisecond) // the prune now waits on the row the replay holds
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	n := <-pruned
	got, _, err := s.Get(ctx, r.ID)
	if err != nil {
		t.Fatalf("the prune removed %d deliveries, among them the replayed one: %v", n, err)
	}
	if got.State != delivery.StatePending || n != 0 {
		t.Errorf("after the prune: state %s, %d pruned; want pending and none", got.State, n)
	}
}
