package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/deliverytest"
	"github.com/hookwall/hookwall/engine/delivery/sqlite"
)

// A delivery whose stored headers were damaged in the file (x'05': a length past the end),
// or one of whose columns no longer reads as its type (text in attempts), is made dead; the
// others, and one enqueued after it, are delivered.
func TestCorruptRowIsRefusedNotBlocking(t *testing.T) {
	for name, damage := range map[string]string{
		"headers":  `UPDATE delivery_bodies SET headers = x'05' WHERE seq = (SELECT seq FROM deliveries WHERE id = ?)`,
		"attempts": `UPDATE deliveries SET attempts = 'x' WHERE id = ?`,
	} {
		t.Run(name, func(t *testing.T) {
			deliverytest.CorruptRow(t, func(t *testing.T) (deliverytest.Opener, func(id string)) {
				path := filepath.Join(t.TempDir(), "deliveries.db")
				open := func(maxPending int) delivery.Store {
					s, err := sqlite.Open(sqlite.Options{Path: path, MaxPending: maxPending})
					if err != nil {
						t.Fatal(err)
					}
					return s
				}
				corrupt := func(id string) {
					db, err := sql.Open("sqlite", "file:"+path)
					if err != nil {
						t.Fatal(err)
					}
					defer db.Close()
					res, err := db.Exec(damage, id)
					if err != nil {
						t.Fatal(err)
					}
					if n, _ := res.RowsAffected(); n != 1 {
						t.Fatalf("corrupted %d rows", n)
					}
				}
				return open, corrupt
			})
		})
	}
}
