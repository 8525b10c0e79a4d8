package state

import (
	"errors"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Check
		want error
	}{
		{"empty", Check{}, nil},
		{"rate", Check{RateKey: "k", Limit: 10, Per: time.Minute}, nil},
		{"rate with burst", Check{RateKey: "k", Limit: 10, Per: time.Minute, Burst: 3}, nil},
		{"dedupe", Check{DedupeKey: "k", DedupeTTL: time.Millisecond}, nil},
		{"limits ignored without rate key", Check{Limit: -1}, nil},
		{"zero limit", Check{RateKey: "k", Per: time.Minute}, errLimit},
		{"sub-µs period", Check{RateKey: "k", Limit: 1, Per: 999}, errPer},
		{"negative burst", Check{RateKey: "k", Limit: 1, Per: time.Second, Burst: -2}, errBurst},
		{"inexact", Check{RateKey: "k", Limit: 100003, Per: 24 * time.Hour}, errWindow},
		{"99999 per day is exact", Check{RateKey: "k", Limit: 99999, Per: 24 * time.Hour}, nil},
		{"no dedupe ttl", Check{DedupeKey: "k"}, errTTL},
		{"sub-ms dedupe ttl", Check{DedupeKey: "k", DedupeTTL: 999 * time.Microsecond}, errTTL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			if err != tc.want {
				t.Fatalf("Validate() = %v, want %v", err, tc.want)
			}
			if err != nil && (!errors.Is(err, ErrInvalidCheck) || errors.Is(err, ErrUnavailable)) {
				t.Fatalf("%v must wrap ErrInvalidCheck only", err)
			}
		})
	}
	if err := ValidTTL(0); !errors.Is(err, ErrInvalidCheck) {
		t.Fatalf("ValidTTL(0) = %v", err)
	}
	if err := ValidTTL(time.Millisecond); err != nil {
		t.Fatalf("ValidTTL(1ms) = %v", err)
	}
}

func TestDedupeStatusString(t *testing.T) {
	want := map[DedupeStatus]string{DedupeNone: "none", DedupeNew: "new", DedupeInFlight: "in_flight", DedupeDelivered: "delivered", 9: "unknown"}
	for s, w := range want {
		if s.String() != w {
			t.Errorf("%d.String() = %q, want %q", s, s.String(), w)
		}
	}
}
