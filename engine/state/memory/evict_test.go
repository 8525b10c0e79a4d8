package memory

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/state"
)

// TestRateEntriesEvictedBeforeDeliveredMarkers: a full shard gives up rate-limit entries
// (losing one resets a limiter) before a delivered marker (losing one lets a replay through),
// even when the rate entries expire later than the marker: a flood of rate keys limited per
// 48 h against a dedupe TTL of 24 h does not shorten replay protection.
func TestRateEntriesEvictedBeforeDeliveredMarkers(t *testing.T) {
	for _, per := range []time.Duration{time.Minute, 48 * time.Hour} {
		t.Run(per.String(), func(t *testing.T) {
			s, _ := newFake(t, Options{MaxKeys: 64, Shards: 1})
			if err := deliverOnce(s, "delivered"); err != nil {
				t.Fatal(err)
			}
			for i := range 200 {
				mustAdmit(t, s, state.Check{RateLimit: state.RateLimit{Key: fmt.Sprint("rate-", i), Limit: 1, Per: per}})
			}
			replay := state.Check{Dedupe: state.Dedupe{Key: "delivered", TTL: 24 * time.Hour}}
			st := s.Stats()
			if a := mustAdmit(t, s, replay); a.Dedupe != state.DedupeDelivered {
				t.Fatalf("replay of a delivered key answered %v (stats %+v): its marker was evicted before the rate entries", a.Dedupe, st)
			}
			if st.Keys > 64 || st.Evictions != uint64(201-st.Keys) || st.DedupeEvictions != 0 {
				t.Fatalf("stats %+v: want at most 64 keys, %d evictions, none of a dedupe entry", st, 201-st.Keys)
			}
			// The newest rate key was not the one evicted: it still limits.
			if a := mustAdmit(t, s, state.Check{RateLimit: state.RateLimit{Key: "rate-199", Limit: 1, Per: per}}); !a.Limited {
				t.Fatalf("newest rate key evicted: %+v", a)
			}
		})
	}
}

// TestDeliveredMarkersEvictedWhenNoRateEntryIsLeft: a shard holding delivered markers only
// still stays bounded (the markers nearest expiry go), and those evictions are counted apart,
// in DedupeEvictions as well as Evictions. With rate entries in the shard, they go first and
// only the markers evicted once they are gone are counted there.
func TestDeliveredMarkersEvictedWhenNoRateEntryIsLeft(t *testing.T) {
	s, clk := newFake(t, Options{MaxKeys: 64, Shards: 1})
	for i := range 200 {
		clk.Add(time.Millisecond)
		if err := deliverOnce(s, fmt.Sprint("d-", i)); err != nil {
			t.Fatal(err)
		}
		if k := s.Stats().Keys; k > 64 {
			t.Fatalf("after %d deliveries: %d keys held, MaxKeys 64", i+1, k)
		}
	}
	st := s.Stats()
	if st.Keys != 64 || st.Evictions != 200-64 || st.DedupeEvictions != 200-64 {
		t.Fatalf("stats %+v: want 64 keys, %d evictions, all of them of dedupe entries", st, 200-64)
	}
	replay := func(key string) state.DedupeStatus {
		return mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: key, TTL: 24 * time.Hour}}).Dedupe
	}
	if got := replay("d-199"); got != state.DedupeDelivered {
		t.Fatalf("newest marker: %v, want delivered", got)
	}
	if got := replay("d-0"); got != state.DedupeNew { // evicted: this replay is a new claim
		t.Fatalf("oldest marker: %v, want evicted (new)", got)
	}
	_ = s.Release(context.Background(), "d-0")

	// Rate entries (48 h) and markers (24 h) together: the rate entries go first.
	s, clk = newFake(t, Options{MaxKeys: 64, Shards: 1})
	for i := range 32 {
		mustAdmit(t, s, state.Check{RateLimit: state.RateLimit{Key: fmt.Sprint("rate-", i), Limit: 1, Per: 48 * time.Hour}})
	}
	for i := range 64 + 10 {
		clk.Add(time.Millisecond)
		if err := deliverOnce(s, fmt.Sprint("d-", i)); err != nil {
			t.Fatal(err)
		}
	}
	// 32 rate entries + 74 markers into 64 places: the 32 rate entries, then 10 markers.
	if st := s.Stats(); st.Keys != 64 || st.Evictions != 42 || st.DedupeEvictions != 10 {
		t.Fatalf("stats %+v: want 64 keys, 42 evictions, 10 of them of dedupe entries", st)
	}
	if got := replay("d-10"); got != state.DedupeDelivered {
		t.Fatalf("marker d-10: %v, want delivered", got)
	}
}
