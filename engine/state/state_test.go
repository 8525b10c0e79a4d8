package state

import (
	"encoding/json"
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
		{"rate", Check{RateLimit: RateLimit{Key: "k", Limit: 10, Per: time.Minute}}, nil},
		{"rate with burst", Check{RateLimit: RateLimit{Key: "k", Limit: 10, Per: time.Minute, Burst: 3}}, nil},
		{"dedupe", Check{Dedupe: Dedupe{Key: "k", TTL: time.Millisecond}}, nil},
		{"limits ignored without rate key", Check{RateLimit: RateLimit{Limit: -1}}, nil},
		{"zero limit", Check{RateLimit: RateLimit{Key: "k", Per: time.Minute}}, errLimit},
		{"sub-µs period", Check{RateLimit: RateLimit{Key: "k", Limit: 1, Per: 999}}, errPer},
		{"negative burst", Check{RateLimit: RateLimit{Key: "k", Limit: 1, Per: time.Second, Burst: -2}}, errBurst},
		{"inexact", Check{RateLimit: RateLimit{Key: "k", Limit: 100003, Per: 24 * time.Hour}}, errWindow},
		{"99999 per day is exact", Check{RateLimit: RateLimit{Key: "k", Limit: 99999, Per: 24 * time.Hour}}, nil},
		{"no dedupe ttl", Check{Dedupe: Dedupe{Key: "k"}}, errTTL},
		{"sub-ms dedupe ttl", Check{Dedupe: Dedupe{Key: "k", TTL: 999 * time.Microsecond}}, errTTL},
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

// The obligations print as the policy wrote them (hookwall eval's rate_limit and dedupe), the
// durations as duration strings.
func TestObligationJSON(t *testing.T) {
	for _, c := range []struct {
		v    any
		want string
	}{
		{RateLimit{Key: "k", Limit: 600, Per: time.Minute}, `{"key":"k","limit":600,"per":"1m0s"}`},
		{&RateLimit{Key: "k", Limit: 1, Per: time.Second, Burst: 5}, `{"key":"k","limit":1,"per":"1s","burst":5}`},
		{Dedupe{Key: "d", TTL: 24 * time.Hour}, `{"key":"d","ttl":"24h0m0s"}`},
	} {
		got, err := json.Marshal(c.v)
		if err != nil || string(got) != c.want {
			t.Errorf("json.Marshal(%#v) = %s, %v; want %s", c.v, got, err, c.want)
		}
	}
}
