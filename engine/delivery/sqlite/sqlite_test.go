package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/deliverytest"
	"github.com/hookwall/hookwall/engine/delivery/sqlite"
)

func TestConformance(t *testing.T) {
	deliverytest.Run(t, func(t *testing.T) deliverytest.Opener {
		path := filepath.Join(t.TempDir(), "deliveries.db")
		return func(maxPending int) delivery.Store {
			s, err := sqlite.Open(sqlite.Options{Path: path, MaxPending: maxPending})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
}
