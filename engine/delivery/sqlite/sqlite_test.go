package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/deliverytest"
	"github.com/hookwall/hookwall/engine/delivery/sqlite"
)

func TestConformance(t *testing.T) {
	deliverytest.Run(t, opener(func(s delivery.Store) delivery.Store { return s }))
}

// The suite passes through the sealing wrapper too: sealing changes nothing a caller sees.
func TestConformanceSealed(t *testing.T) {
	kr, err := delivery.NewKeyring([]delivery.Key{{ID: "k1", Value: []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")}})
	if err != nil {
		t.Fatal(err)
	}
	deliverytest.Run(t, opener(func(s delivery.Store) delivery.Store { return delivery.Sealed(s, kr, nil) }))
}

// opener opens each test's store in a file of its own, wrapped by wrap.
func opener(wrap func(delivery.Store) delivery.Store) func(t *testing.T) deliverytest.Opener {
	return func(t *testing.T) deliverytest.Opener {
		path := filepath.Join(t.TempDir(), "deliveries.db")
		return func(maxPending int) delivery.Store {
			s, err := sqlite.Open(sqlite.Options{Path: path, MaxPending: maxPending})
			if err != nil {
				t.Fatal(err)
			}
			return wrap(s)
		}
	}
}
