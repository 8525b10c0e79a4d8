package memory

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/state"
)

// TestFullStoreKeepsClaimsInFlight: in a full store, a delivery's in-flight claim (which
// lives its route's timeout + 5 s) is nearer its expiry than every delivered marker (24 h),
// yet the next insert gives up the oldest marker, not the claim: a duplicate sent while the
// first is still in flight is in flight (409), not new (forwarded a second time).
func TestFullStoreKeepsClaimsInFlight(t *testing.T) {
	s, clk := newFake(t, Options{MaxKeys: 100, Shards: 1})
	ctx := context.Background()
	deliver := func(key string) {
		if err := deliverOnce(s, key); err != nil {
			t.Fatal(err)
		}
	}
	// An hour of deliveries fills the store: the oldest marker has 23 h left.
	for i := range 100 {
		deliver(fmt.Sprint("old-", i))
		clk.Add(36 * time.Second)
	}
	// Delivery A arrives; its upstream is slow (still within the route's 10 s timeout).
	cA := state.Check{Dedupe: state.Dedupe{Key: "A", TTL: 24 * time.Hour}, InFlight: 15 * time.Second}
	if a, err := s.Admit(ctx, &cA); err != nil || a.Dedupe != state.DedupeNew {
		t.Fatalf("A: %+v %v", a, err)
	}
	has := func(key string) bool { // a read that changes nothing
		si, h := s.locate(key)
		sh := &s.shards[si]
		sh.mu.Lock()
		defer sh.mu.Unlock()
		_, ok := sh.lookup(key, h, clk.Now().UnixMicro())
		return ok
	}
	// One other delivery arrives 100 ms later.
	clk.Add(100 * time.Millisecond)
	deliver("B")
	if !has("A") || has("old-0") || s.Stats().Evictions == 0 {
		t.Errorf("after B: A held %v, the oldest marker held %v, %d evictions; want A, not the marker, and an eviction", has("A"), has("old-0"), s.Stats().Evictions)
	}
	// The provider retries A 1 s after it was sent: A is still in flight.
	clk.Add(900 * time.Millisecond)
	dup, _ := s.Admit(ctx, &cA)
	if dup.Dedupe != state.DedupeInFlight {
		t.Errorf("a duplicate of an in-flight delivery was admitted as %v: it is forwarded twice", dup.Dedupe)
	}
}

// TestPassingOverClaimsAllocatesNothing: a delivery into a full shard whose front holds many
// claims in flight passes over them without allocating (their list is the shard's scratch).
func TestPassingOverClaimsAllocatesNothing(t *testing.T) {
	s, clk := newFake(t, Options{MaxKeys: 1000, Shards: 1})
	ctx := context.Background()
	deliver := func(key string) { _ = deliverOnce(s, key) } // in AllocsPerRun: no t.Fatal
	for i := range 1000 - 64 {
		deliver(fmt.Sprint("old-", i))
	}
	clk.Add(time.Second)
	for i := range 64 { // slow requests in flight
		c := state.Check{Dedupe: state.Dedupe{Key: fmt.Sprint("slow-", i), TTL: 24 * time.Hour}, InFlight: 15 * time.Second}
		if a, err := s.Admit(ctx, &c); err != nil || a.Dedupe != state.DedupeNew {
			t.Fatalf("slow-%d: %+v %v", i, a, err)
		}
	}
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprint("new-", i)
	}
	n := 0
	deliver(keys[n]) // the scratch grows once
	if allocs := testing.AllocsPerRun(500, func() { n++; deliver(keys[n]) }); allocs > 0 {
		t.Errorf("%.2f allocations a delivery into a full shard with 64 claims in flight, want 0", allocs)
	}
	if st := s.Stats(); st.Keys > 1000 || st.Evictions == 0 {
		t.Errorf("stats %+v: want at most 1000 keys, and evictions", st)
	}
}

// deliverOnce admits a new delivery of key (24 h dedupe, 15 s in flight) and commits it.
func deliverOnce(s *Store, key string) error {
	ctx := context.Background()
	c := state.Check{Dedupe: state.Dedupe{Key: key, TTL: 24 * time.Hour}, InFlight: 15 * time.Second}
	a, err := s.Admit(ctx, &c)
	if err != nil || a.Dedupe != state.DedupeNew {
		return fmt.Errorf("admit %s: %+v %v", key, a, err)
	}
	return s.CommitClaim(ctx, key, a.Claim, 24*time.Hour)
}
