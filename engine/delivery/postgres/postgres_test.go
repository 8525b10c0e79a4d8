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
	srv := pgtest.Start(t)
	deliverytest.Run(t, func(t *testing.T) deliverytest.Opener {
		url := srv.NewDatabase(t)
		return func(maxPending int) delivery.Store {
			s, err := postgres.Open(context.Background(), postgres.Options{URL: url, MaxPending: maxPending})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
	})
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
