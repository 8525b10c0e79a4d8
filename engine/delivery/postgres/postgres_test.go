package postgres_test

import (
	"context"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/deliverytest"
	"github.com/hookwall/hookwall/engine/delivery/postgres"
	"github.com/hookwall/hookwall/engine/delivery/postgres/pgtest"
)

func TestConformance(t *testing.T) {
	deliverytest.Run(t, opener(pgtest.Start(t), func(s delivery.Store) delivery.Store { return s }))
}

// The suite passes through the sealing wrapper over PostgreSQL too.
func TestConformanceSealed(t *testing.T) {
	kr, err := delivery.NewKeyring([]delivery.Key{{ID: "k1", Value: []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")}})
	if err != nil {
		t.Fatal(err)
	}
	deliverytest.Run(t, opener(pgtest.Start(t), func(s delivery.Store) delivery.Store { return delivery.Sealed(s, kr, nil) }))
}

// opener opens each test's store in a database of its own on srv, wrapped by wrap.
func opener(srv *pgtest.Server, wrap func(delivery.Store) delivery.Store) func(t *testing.T) deliverytest.Opener {
	return func(t *testing.T) deliverytest.Opener {
		url := srv.NewDatabase(t)
		return func(maxPending int) delivery.Store {
			s, err := postgres.Open(context.Background(), postgres.Options{URL: url, MaxPending: maxPending})
			if err != nil {
				t.Fatal(err)
			}
			return wrap(s)
		}
	}
}

// An unreachable or malformed URL fails Open without quoting the URL (it holds a password).
func TestOpenErrorsHideTheURL(t *testing.T) {
	for _, u := range []string{"postgres://hookwall:hunter2@127.0.0.1:1/db?connect_timeout=1", "postgres://hookwall:hunter2@%zz/db"} {
		_, err := postgres.Open(context.Background(), postgres.Options{URL: u})
		if err == nil {
			t.Fatalf("%q opened", u)
		}
		if s := err.Error(); strings.Contains(s, "hunter2") {
			t.Fatalf("error quotes the password: %s", s)
		}
	}
}
