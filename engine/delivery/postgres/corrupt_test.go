package postgres_test

import (
	"context"
	"testing"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/deliverytest"
	"github.com/hookwall/hookwall/engine/delivery/postgres"
	"github.com/hookwall/hookwall/engine/delivery/postgres/pgtest"
)

// A delivery whose stored headers were damaged in the database ('\x05': a length past the
// end) is made dead; the others, leased by the same claim, and one enqueued after it, are
// delivered.
func TestCorruptRowIsRefusedNotBlocking(t *testing.T) {
	srv := pgtest.Start(t)
	deliverytest.CorruptRow(t, func(t *testing.T) (deliverytest.Opener, func(id string)) {
		url := srv.NewDatabase(t)
		open := func(maxPending int) delivery.Store {
			s, err := postgres.Open(context.Background(), postgres.Options{URL: url, MaxPending: maxPending})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		corrupt := func(id string) {
			conn := pgtest.Connect(t, url)
			tag, err := conn.Exec(context.Background(), `UPDATE hookwall_deliveries SET headers = '\x05' WHERE id = $1`, id)
			if err != nil {
				t.Fatal(err)
			}
			if tag.RowsAffected() != 1 {
				t.Fatalf("corrupted %d rows", tag.RowsAffected())
			}
		}
		return open, corrupt
	})
}
