package memory

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/state"
	"github.com/hookwall/hookwall/engine/state/statetest"
)

func TestConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store { return state.Bound(New(Options{})) })
}

// fakeClock is a settable clock for exact arithmetic checks.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newFake(t *testing.T, o Options) (*Store, *fakeClock) {
	t.Helper()
	clk := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	o.Now = clk.Now
	s := New(o)
	t.Cleanup(func() { _ = s.Close() })
	return s, clk
}

func mustAdmit(t *testing.T, s *Store, c state.Check) state.Admission {
	t.Helper()
	a, err := s.Admit(context.Background(), &c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// With a frozen clock every number is exact: 7 per minute passes 7, then exactly one every
// 60/7 s, and RetryAfter counts down to the microsecond.
func TestGCRAExactWithClock(t *testing.T) {
	s, clk := newFake(t, Options{})
	c := state.Check{RateKey: "k", Limit: 7, Per: time.Minute}
	for i := range 7 {
		if a := mustAdmit(t, s, c); a.Limited || a.Remaining != int64(6-i) {
			t.Fatalf("request %d: %+v", i+1, a)
		}
	}
	// The 8th may pass at 60/7 s = 8571428.57…µs, i.e. after 8571429µs (whole µs, rounded up).
	if a := mustAdmit(t, s, c); !a.Limited || a.RetryAfter != 8571429*time.Microsecond {
		t.Fatalf("8th: %+v", a)
	}
	clk.Add(8571428 * time.Microsecond)
	if a := mustAdmit(t, s, c); !a.Limited || a.RetryAfter != time.Microsecond {
		t.Fatalf("1µs early: %+v", a)
	}
	clk.Add(time.Microsecond)
	if a := mustAdmit(t, s, c); a.Limited || a.Remaining != 0 {
		t.Fatalf("on time: %+v", a)
	}
	// Over a whole minute of steady traffic at one request per interval nothing drifts: after
	// 7 more intervals (60 s since the 8th became due) exactly 7 more pass.
	passed := 0
	t0 := clk.Now()
	for k := 1; k <= 7*60; k++ {
		clk.Set(t0.Add(time.Duration(k) * time.Minute / (7 * 60)))
		if a := mustAdmit(t, s, c); !a.Limited {
			passed++
		}
	}
	if passed != 7 {
		t.Fatalf("%d passed in 60 s at 7/min, want 7", passed)
	}
}

func TestInFlightTTLCap(t *testing.T) {
	s, clk := newFake(t, Options{})
	c := state.Check{DedupeKey: "k", DedupeTTL: 24 * time.Hour}
	if a := mustAdmit(t, s, c); a.Dedupe != state.DedupeNew {
		t.Fatalf("claim: %+v", a)
	}
	clk.Add(state.InFlightTTL - time.Microsecond)
	if a := mustAdmit(t, s, c); a.Dedupe != state.DedupeInFlight {
		t.Fatalf("just before InFlightTTL: %+v", a)
	}
	clk.Add(time.Microsecond)
	if a := mustAdmit(t, s, c); a.Dedupe != state.DedupeNew {
		t.Fatalf("at InFlightTTL the crashed claim must be gone: %+v", a)
	}
	if err := s.Commit(context.Background(), "k", 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	clk.Add(24*time.Hour - time.Microsecond)
	if a := mustAdmit(t, s, c); a.Dedupe != state.DedupeDelivered {
		t.Fatalf("before the delivered TTL: %+v", a)
	}
	clk.Add(time.Microsecond)
	if a := mustAdmit(t, s, c); a.Dedupe != state.DedupeNew {
		t.Fatalf("after the delivered TTL: %+v", a)
	}
}

// A flood of distinct keys never grows the store past MaxKeys, and the dropped live entries
// are counted.
func TestBoundedFlood(t *testing.T) {
	const maxKeys, flood = 10_000, 100_000
	s, clk := newFake(t, Options{MaxKeys: maxKeys})
	for i := range flood {
		clk.Add(time.Millisecond) // later keys expire later: eviction order is well defined
		c := state.Check{DedupeKey: fmt.Sprintf("flood-%d", i), DedupeTTL: time.Hour}
		if i%2 == 1 {
			c = state.Check{RateKey: fmt.Sprintf("flood-%d", i), Limit: 1, Per: time.Hour}
		}
		mustAdmit(t, s, c)
		if i%1000 == 0 {
			if k := s.Stats().Keys; k > maxKeys {
				t.Fatalf("after %d keys: %d held, MaxKeys %d", i+1, k, maxKeys)
			}
		}
	}
	st := s.Stats()
	if st.Keys > maxKeys || st.Keys < maxKeys*9/10 {
		t.Fatalf("Keys = %d, want in [%d, %d]", st.Keys, maxKeys*9/10, maxKeys)
	}
	if want := uint64(flood - st.Keys); st.Evictions != want {
		t.Fatalf("Evictions = %d, want %d (every key beyond the bound evicts one)", st.Evictions, want)
	}
	// The last key expires last, so it is never the one evicted: it still limits.
	if a := mustAdmit(t, s, state.Check{RateKey: fmt.Sprintf("flood-%d", flood-1), Limit: 1, Per: time.Hour}); !a.Limited {
		t.Fatalf("newest key evicted: %+v", a)
	}
}

// Expired entries are dropped without any eviction and give their room back.
func TestExpiredNotCountedAsEvictions(t *testing.T) {
	s, clk := newFake(t, Options{MaxKeys: 100, Shards: 1})
	for i := range 100 {
		mustAdmit(t, s, state.Check{DedupeKey: fmt.Sprint("a", i), DedupeTTL: time.Second})
	}
	clk.Add(2 * time.Second)
	for i := range 100 {
		mustAdmit(t, s, state.Check{DedupeKey: fmt.Sprint("b", i), DedupeTTL: time.Second})
	}
	if st := s.Stats(); st.Evictions != 0 || st.Keys != 100 {
		t.Fatalf("Stats = %+v, want 100 keys and no evictions", st)
	}
	// Sweeping: with time passed, writes drop expired entries though there is room.
	s2, clk2 := newFake(t, Options{MaxKeys: 1000, Shards: 1})
	for i := range 100 {
		mustAdmit(t, s2, state.Check{DedupeKey: fmt.Sprint("a", i), DedupeTTL: time.Second})
	}
	clk2.Add(2 * time.Second)
	for i := range 50 {
		mustAdmit(t, s2, state.Check{DedupeKey: fmt.Sprint("b", i), DedupeTTL: time.Second})
	}
	if st := s2.Stats(); st.Keys != 50 || st.Evictions != 0 {
		t.Fatalf("Stats = %+v, want the 100 expired entries swept and 50 live", st)
	}
}

// A limited rate entry expires when it is back to fresh: the store does not keep it longer.
func TestRateEntryExpiry(t *testing.T) {
	s, clk := newFake(t, Options{Shards: 1}) // one shard: the sweep below sees the rate entry
	c := state.Check{RateKey: "r", Limit: 2, Per: time.Second}
	mustAdmit(t, s, c)
	mustAdmit(t, s, c)
	if st := s.Stats(); st.Keys != 1 {
		t.Fatalf("Keys = %d, want 1", st.Keys)
	}
	clk.Add(time.Second)
	if a := mustAdmit(t, s, state.Check{RateKey: "r", Limit: 2, Per: time.Second}); a.Remaining != 1 {
		t.Fatalf("after a full period: %+v", a)
	}
	clk.Add(time.Second)
	// This write sweeps the now-fresh entry before re-adding.
	mustAdmit(t, s, state.Check{DedupeKey: "x", DedupeTTL: time.Second})
	if st := s.Stats(); st.Keys != 1 {
		t.Fatalf("Keys = %d, want only the dedupe key", st.Keys)
	}
}

func TestShardRounding(t *testing.T) {
	for _, tc := range []struct{ maxKeys, shards, want int }{
		{0, 0, DefaultShards},
		{10, 64, 8},
		{1, 64, 1},
		{10_000, 3, 4},
		{10_000, 100, 128},
	} {
		s := New(Options{MaxKeys: tc.maxKeys, Shards: tc.shards})
		if got := len(s.shards); got != tc.want {
			t.Errorf("MaxKeys %d Shards %d: %d shards, want %d", tc.maxKeys, tc.shards, got, tc.want)
		}
		limit := tc.maxKeys
		if limit == 0 {
			limit = DefaultMaxKeys
		}
		if total := len(s.shards) * s.shards[0].limit; total > limit {
			t.Errorf("MaxKeys %d Shards %d: capacity %d exceeds MaxKeys", tc.maxKeys, tc.shards, total)
		}
	}
}

// The expiry heap stays a heap through inserts, updates, removals and evictions.
func TestHeapInvariant(t *testing.T) {
	s, clk := newFake(t, Options{MaxKeys: 64, Shards: 1})
	ctx := context.Background()
	for i := range 2000 {
		key := fmt.Sprint(i % 97)
		switch i % 5 {
		case 0:
			mustAdmit(t, s, state.Check{DedupeKey: key, DedupeTTL: time.Duration(1+i%13) * time.Second})
		case 1:
			_ = s.Commit(ctx, key, time.Duration(1+i%7)*time.Second)
		case 2:
			_ = s.Release(ctx, key)
		case 3:
			mustAdmit(t, s, state.Check{RateKey: key, Limit: int64(1 + i%5), Per: time.Second})
		case 4:
			clk.Add(time.Duration(i%300) * time.Millisecond)
		}
		sh := &s.shards[0]
		if n := len(sh.rate) + len(sh.dedupe); n != len(sh.heap) || n > sh.limit {
			t.Fatalf("step %d: %d map entries, %d heap entries, limit %d", i, n, len(sh.heap), sh.limit)
		}
		for j := range sh.heap {
			if e := sh.ents[sh.heap[j].slot]; int(e.pos) != j || e.exp != sh.heap[j].exp {
				t.Fatalf("step %d: heap node %d out of sync with its entry", i, j)
			}
			if j > 0 && sh.less(j, (j-1)/2) {
				t.Fatalf("step %d: heap order broken at %d", i, j)
			}
		}
	}
}

// The store is bounded in bytes too: a flood of long keys never takes more than MaxBytes as
// the store counts it, the entries nearest to expiry go first, and they are counted. Behind
// state.Bound the same flood of 14 KB keys costs 71 bytes of key each.
func TestBoundedBytes(t *testing.T) {
	const maxBytes = 1 << 20
	s, clk := newFake(t, Options{MaxBytes: maxBytes})
	long := strings.Repeat("k", 1000)
	for i := range 20_000 {
		clk.Add(time.Millisecond)
		mustAdmit(t, s, state.Check{DedupeKey: fmt.Sprint(long, i), DedupeTTL: time.Hour})
		if st := s.Stats(); st.Bytes > maxBytes {
			t.Fatalf("after %d keys: %d bytes counted, MaxBytes %d", i+1, st.Bytes, maxBytes)
		}
	}
	st := s.Stats()
	per := int64(1000+5) + EntryOverhead
	if st.Bytes < maxBytes*8/10 || int64(st.Keys) > maxBytes/per {
		t.Fatalf("Stats = %+v, want about %d bytes in at most %d keys", st, maxBytes, maxBytes/per)
	}
	if want := uint64(20_000 - st.Keys); st.Evictions != want {
		t.Fatalf("Evictions = %d, want %d", st.Evictions, want)
	}
	if a := mustAdmit(t, s, state.Check{DedupeKey: fmt.Sprint(long, 19_999), DedupeTTL: time.Hour}); a.Dedupe != state.DedupeInFlight {
		t.Fatalf("newest key evicted: %+v", a)
	}

	b := state.Bound(New(Options{MaxBytes: maxBytes}))
	huge := strings.Repeat("h", 14<<10)
	for i := range 2000 {
		c := state.Check{DedupeKey: fmt.Sprint(huge, i), DedupeTTL: time.Hour}
		if _, err := b.Admit(context.Background(), &c); err != nil {
			t.Fatal(err)
		}
	}
	if st := b.Backend().(*Store).Stats(); st.Keys != 2000 || st.Bytes != 2000*(71+EntryOverhead) || st.Evictions != 0 {
		t.Fatalf("behind Bound: %+v, want 2000 keys of 71 bytes and no evictions", st)
	}
}
