package memory

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/state"
	"github.com/hookwall/hookwall/engine/state/internal/gcra"
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
	c := state.Check{RateLimit: state.RateLimit{Key: "k", Limit: 7, Per: time.Minute}}
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
	c := state.Check{Dedupe: state.Dedupe{Key: "k", TTL: 24 * time.Hour}}
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
		c := state.Check{Dedupe: state.Dedupe{Key: fmt.Sprintf("flood-%d", i), TTL: time.Hour}}
		if i%2 == 1 {
			c = state.Check{RateLimit: state.RateLimit{Key: fmt.Sprintf("flood-%d", i), Limit: 1, Per: time.Hour}}
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
	if a := mustAdmit(t, s, state.Check{RateLimit: state.RateLimit{Key: fmt.Sprintf("flood-%d", flood-1), Limit: 1, Per: time.Hour}}); !a.Limited {
		t.Fatalf("newest key evicted: %+v", a)
	}
}

// Expired entries are dropped without any eviction and give their room back.
func TestExpiredNotCountedAsEvictions(t *testing.T) {
	s, clk := newFake(t, Options{MaxKeys: 100, Shards: 1})
	for i := range 100 {
		mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: fmt.Sprint("a", i), TTL: time.Second}})
	}
	clk.Add(2 * time.Second)
	for i := range 100 {
		mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: fmt.Sprint("b", i), TTL: time.Second}})
	}
	if st := s.Stats(); st.Evictions != 0 || st.Keys != 100 {
		t.Fatalf("Stats = %+v, want 100 keys and no evictions", st)
	}
	// Sweeping: with time passed, writes drop expired entries though there is room.
	s2, clk2 := newFake(t, Options{MaxKeys: 1000, Shards: 1})
	for i := range 100 {
		mustAdmit(t, s2, state.Check{Dedupe: state.Dedupe{Key: fmt.Sprint("a", i), TTL: time.Second}})
	}
	clk2.Add(2 * time.Second)
	for i := range 50 {
		mustAdmit(t, s2, state.Check{Dedupe: state.Dedupe{Key: fmt.Sprint("b", i), TTL: time.Second}})
	}
	if st := s2.Stats(); st.Keys != 50 || st.Evictions != 0 {
		t.Fatalf("Stats = %+v, want the 100 expired entries swept and 50 live", st)
	}
}

// A limited rate entry expires when it is back to fresh: the store does not keep it longer.
func TestRateEntryExpiry(t *testing.T) {
	s, clk := newFake(t, Options{Shards: 1}) // one shard: the sweep below sees the rate entry
	c := state.Check{RateLimit: state.RateLimit{Key: "r", Limit: 2, Per: time.Second}}
	mustAdmit(t, s, c)
	mustAdmit(t, s, c)
	if st := s.Stats(); st.Keys != 1 {
		t.Fatalf("Keys = %d, want 1", st.Keys)
	}
	clk.Add(time.Second)
	if a := mustAdmit(t, s, state.Check{RateLimit: state.RateLimit{Key: "r", Limit: 2, Per: time.Second}}); a.Remaining != 1 {
		t.Fatalf("after a full period: %+v", a)
	}
	clk.Add(time.Second)
	// This write sweeps the now-fresh entry before re-adding.
	mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: "x", TTL: time.Second}})
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

// The expiry buckets stay consistent through inserts, updates, claim commits, removals and
// evictions: every entry is on its bucket's list once, every bucket is non-empty and in the
// order heap at its place, and the heap is ordered.
func TestExpiryInvariant(t *testing.T) {
	s, clk := newFake(t, Options{MaxKeys: 64, Shards: 1})
	ctx := context.Background()
	claims := map[string]uint64{}
	for i := range 4000 {
		key := fmt.Sprint(i % 97)
		switch i % 6 {
		case 0:
			a := mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: key, TTL: time.Duration(1+i%13) * time.Second}})
			claims[key] = a.Claim
		case 1:
			_ = s.Commit(ctx, key, time.Duration(1+i%7)*time.Second)
		case 2:
			_ = s.Release(ctx, key)
		case 3:
			mustAdmit(t, s, state.Check{RateLimit: state.RateLimit{Key: key, Limit: int64(1 + i%5), Per: time.Second}})
		case 4:
			clk.Add(time.Duration(i%300) * time.Millisecond)
		case 5:
			_ = s.CommitClaim(ctx, key, claims[key], time.Duration(1+i%11)*time.Second)
		}
		checkBuckets(t, i, &s.shards[0])
	}
}

func checkBuckets(t *testing.T, step int, sh *shard) {
	t.Helper()
	n := len(sh.cells) + sh.dedupe.n
	if n > sh.limit {
		t.Fatalf("step %d: %d entries, limit %d", step, n, sh.limit)
	}
	seen := 0
	for qi := range sh.q {
		q := &sh.q[qi]
		if len(q.buckets) != len(q.order) {
			t.Fatalf("step %d: queue %d: %d buckets, %d in the heap", step, qi, len(q.buckets), len(q.order))
		}
		if want := int64(math.MaxInt64); len(q.order) > 0 && q.sweepAt != q.bks[q.order[0]].id<<bucketShift || len(q.order) == 0 && q.sweepAt != want {
			t.Fatalf("step %d: queue %d: sweepAt %d is not the earliest bucket's start", step, qi, q.sweepAt)
		}
		for _, bi := range q.hot {
			if bi != nilSlot && (int(bi) >= len(q.bks) || q.buckets[q.bks[bi].id] != bi) {
				t.Fatalf("step %d: queue %d: link's recent bucket %d is not a live bucket", step, qi, bi)
			}
		}
		if len(q.bks) != len(q.order)+len(q.bfree) {
			t.Fatalf("step %d: queue %d: %d buckets in the arena, %d in the heap, %d free", step, qi, len(q.bks), len(q.order), len(q.bfree))
		}
		for j, bi := range q.order {
			b := &q.bks[bi]
			if int(b.pos) != j || q.buckets[b.id] != bi {
				t.Fatalf("step %d: queue %d: bucket %d out of sync with the heap", step, qi, b.id)
			}
			if j > 0 && q.bks[q.order[(j-1)/2]].id > b.id {
				t.Fatalf("step %d: queue %d: heap order broken at %d", step, qi, j)
			}
			prev := int32(nilSlot)
			for i := b.head; i != nilSlot; i = sh.ents[i].next {
				e := &sh.ents[i]
				if e.prev != prev || e.exp>>bucketShift != b.id || e.bkt != bi || queueOf(e.kind) != qi {
					t.Fatalf("step %d: entry %d misplaced in bucket %d of queue %d", step, i, b.id, qi)
				}
				if e.kind == kindRate {
					if c := sh.cells[e.key]; c == nil || c.slot != i || c.exp() < e.exp {
						t.Fatalf("step %d: rate entry %d not its cell's, or placed after its cell's expiry", step, i)
					}
				} else if sh.dedupe.get(sh.ents, e.key, e.h) != i {
					t.Fatalf("step %d: entry %d not the index's entry for its key", step, i)
				}
				prev = i
				seen++
			}
			if b.tail != prev {
				t.Fatalf("step %d: queue %d: bucket %d tail %d, want %d", step, qi, b.id, b.tail, prev)
			}
		}
	}
	if seen != n {
		t.Fatalf("step %d: %d entries on bucket lists, %d in the maps", step, seen, n)
	}
}

// A claim settled empties its in-flight bucket, which stays for the next claims of its
// span (no bucket is made or dropped per request) and is dropped once it is the earliest.
func TestEmptiedBucketKeptUntilFront(t *testing.T) {
	s, clk := newFake(t, Options{Shards: 1})
	ctx := context.Background()
	sh := &s.shards[0]
	q := &sh.q[qDedupe]
	for i := range 3 {
		key := "d" + strconv.Itoa(i)
		a := mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: key, TTL: time.Hour}})
		if err := s.CommitClaim(ctx, key, a.Claim, time.Hour); err != nil {
			t.Fatal(err)
		}
		// The in-flight bucket (now + 5 min, empty) and the delivered one.
		if len(q.order) != 2 || len(q.bks) != 2 {
			t.Fatalf("claim %d: %d buckets in the heap, %d in the arena; want the same 2", i, len(q.order), len(q.bks))
		}
		checkBuckets(t, i, sh)
	}
	if h := q.bks[q.order[0]]; h.head != nilSlot || h.id != (clk.Now().Add(state.InFlightTTL).UnixMicro())>>bucketShift {
		t.Fatalf("the earliest bucket %+v is not the emptied in-flight one", h)
	}
	clk.Add(state.InFlightTTL + 2*time.Second) // past the in-flight bucket's span
	mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: "later", TTL: time.Second}})
	checkBuckets(t, 3, sh)
	for _, bi := range q.order {
		if q.bks[bi].head == nilSlot {
			t.Fatalf("bucket %d still kept empty once it was the earliest", q.bks[bi].id)
		}
	}
	if want := q.bks[q.order[0]].id << bucketShift; q.sweepAt != want {
		t.Fatalf("sweepAt %d, want the earliest bucket's start %d", q.sweepAt, want)
	}
}

// CommitClaim settles the claim Admit made exactly as Commit does: the key is delivered for
// the TTL given. A claim that no longer holds the key (released and taken by another key, or
// made up) still commits the key, never the slot's other occupant.
func TestCommitClaim(t *testing.T) {
	s, clk := newFake(t, Options{Shards: 1})
	ctx := context.Background()
	c := state.Check{Dedupe: state.Dedupe{Key: "a", TTL: time.Hour}}
	a := mustAdmit(t, s, c)
	if a.Dedupe != state.DedupeNew || a.Claim == 0 {
		t.Fatalf("claim: %+v", a)
	}
	if err := s.CommitClaim(ctx, "a", a.Claim, time.Minute); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Minute - time.Microsecond)
	if a := mustAdmit(t, s, c); a.Dedupe != state.DedupeDelivered {
		t.Fatalf("committed by claim, before its TTL: %+v", a)
	}
	clk.Add(time.Microsecond)
	if a := mustAdmit(t, s, c); a.Dedupe != state.DedupeNew {
		t.Fatalf("after the TTL: %+v", a)
	}

	// A stale claim: "b" was claimed, released, and its slot given to "c".
	b := mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: "b", TTL: time.Hour}})
	if err := s.Release(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	cc := mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: "c", TTL: time.Hour}})
	if cc.Claim != b.Claim {
		t.Fatalf("the freed slot was not reused (%x, %x): the test does not test a stale claim", cc.Claim, b.Claim)
	}
	if err := s.CommitClaim(ctx, "b", b.Claim, time.Hour); err != nil {
		t.Fatal(err)
	}
	if a := mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: "b", TTL: time.Hour}}); a.Dedupe != state.DedupeDelivered {
		t.Fatalf("b after a stale-claim commit: %+v", a)
	}
	if a := mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: "c", TTL: time.Hour}}); a.Dedupe != state.DedupeInFlight {
		t.Fatalf("c must still be in flight: %+v", a)
	}
	// A rate entry with the claimed key's name is not a claim: claims naming every slot, and
	// some naming none, commit the dedupe key d and leave the rate entry d alone.
	mustAdmit(t, s, state.Check{RateLimit: state.RateLimit{Key: "d", Limit: 1, Per: time.Hour}})
	bogus := []uint64{0, 1 << 40, ^uint64(0)}
	for slot := range len(s.shards[0].ents) + 1 {
		bogus = append(bogus, uint64(slot+1))
	}
	for _, bogus := range bogus {
		if err := s.CommitClaim(ctx, "d", bogus, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if a := mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: "d", TTL: time.Hour}}); a.Dedupe != state.DedupeDelivered {
		t.Fatalf("d after bogus claims: %+v", a)
	}
	sh := &s.shards[0]
	if e := sh.ents[sh.cells["d"].slot]; e.kind != kindRate || e.exp != clk.Now().Add(time.Hour).UnixMicro() {
		t.Fatalf("the rate entry d was changed: %+v", e)
	}
	if a := mustAdmit(t, s, state.Check{RateLimit: state.RateLimit{Key: "d", Limit: 1, Per: time.Hour}}); !a.Limited {
		t.Fatalf("the rate entry d must be left alone: %+v", a)
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
		mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: fmt.Sprint(long, i), TTL: time.Hour}})
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
	if a := mustAdmit(t, s, state.Check{Dedupe: state.Dedupe{Key: fmt.Sprint(long, 19_999), TTL: time.Hour}}); a.Dedupe != state.DedupeInFlight {
		t.Fatalf("newest key evicted: %+v", a)
	}

	b := state.Bound(New(Options{MaxBytes: maxBytes}))
	huge := strings.Repeat("h", 14<<10)
	for i := range 2000 {
		c := state.Check{Dedupe: state.Dedupe{Key: fmt.Sprint(huge, i), TTL: time.Hour}}
		if _, err := b.Admit(context.Background(), &c); err != nil {
			t.Fatal(err)
		}
	}
	if st := b.Backend().(*Store).Stats(); st.Keys != 2000 || st.Bytes != 2000*(71+EntryOverhead) || st.Evictions != 0 {
		t.Fatalf("behind Bound: %+v, want 2000 keys of 71 bytes and no evictions", st)
	}
}

// The rate cells (compare-and-swap from a base, rebased when the clock runs before it or far
// past it, recounted when a key's limit changes) decide exactly as GCRA on (tat, frac) does:
// a random walk of clock moves, backwards and days-long jumps included, and of limits is
// replayed on the store and on a plain model, and every answer must agree. The clock goes
// back only where no key expired in between: an entry the store swept is gone for good,
// which the model does not follow.
func TestRateCellsMatchModel(t *testing.T) {
	for seed := range uint64(16) {
		rateCellsMatchModel(t, seed)
	}
}

func rateCellsMatchModel(t *testing.T, seed uint64) {
	s, clk := newFake(t, Options{Shards: 2})
	type st struct{ tat, frac, exp int64 }
	model := map[string]st{}
	limits := []state.Check{
		{RateLimit: state.RateLimit{Limit: 3, Per: time.Second}},
		{RateLimit: state.RateLimit{Limit: 7, Per: time.Minute, Burst: 2}},
		{RateLimit: state.RateLimit{Limit: 1 << 50, Per: time.Microsecond}}, // L = 2^50: rebased 2^11 µs past its base
		{RateLimit: state.RateLimit{Limit: 1 << 30, Per: time.Second}},      // L = 2^24 after reduction: rebased past 2^37 µs
		{RateLimit: state.RateLimit{Limit: 99999, Per: 24 * time.Hour}},     // an interval of no whole µs
		{RateLimit: state.RateLimit{Limit: 100_000_000, Per: time.Minute}},  // the benchmark's
	}
	rng := rand.New(rand.NewPCG(seed, 2))
	for step := range 5000 {
		switch rng.IntN(10) {
		case 0:
			back := time.Duration(rng.IntN(2_000_000)) * time.Microsecond
			from, to := clk.Now().UnixMicro(), clk.Now().Add(-back).UnixMicro()
			for _, m := range model {
				if m.exp > to && m.exp <= from {
					back = 0
				}
			}
			clk.Add(-back)
		case 1:
			clk.Add(time.Duration(rng.IntN(48)) * time.Hour)
		default:
			clk.Add(time.Duration(rng.IntN(300_000)) * time.Microsecond)
		}
		c := limits[rng.IntN(len(limits))]
		if rng.IntN(8) != 0 {
			c = limits[step%3] // mostly a steady limit per key, so the shared path runs
		}
		c.RateLimit.Key = fmt.Sprint("k", rng.IntN(3))
		now := clk.Now().UnixMicro()
		lim, _ := gcra.New(c.RateLimit.Limit, int64(c.RateLimit.Per/time.Microsecond), c.RateLimit.Burst)
		m := model[c.RateLimit.Key]
		if m.exp <= now {
			m = st{}
		}
		r := lim.Decide(now, m.tat, m.frac)
		if r.Allowed {
			model[c.RateLimit.Key] = st{r.Tat, r.Frac, now + r.TTL}
		}
		want := state.Admission{Limited: !r.Allowed, Remaining: r.Remaining}
		if !r.Allowed {
			want.RetryAfter = time.Duration(r.RetryUS) * time.Microsecond
		}
		if got := mustAdmit(t, s, c); got != want {
			t.Fatalf("seed %d step %d, %s %+v at %d: got %+v, want %+v", seed, step, c.RateLimit.Key, lim, now, got, want)
		}
	}
}

// Many goroutines on one hot rate key, each request with its own short-lived delivery id (so
// every write sweeps and the shards churn), and a few cold rate keys made and dropped beside
// it: the hot key passes exactly its limit. Run with -race, it also checks the shared path's
// locking.
func TestHotRateKeyExact(t *testing.T) {
	// The clock stands still: at 10,000 an hour a token comes back every 0.36 s, and a run
	// that takes longer (0.39 s under the race detector on a loaded machine) rightly passes
	// one more. Reading a constant is safe for any number of goroutines.
	frozen := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := New(Options{Shards: 4, Now: func() time.Time { return frozen }})
	t.Cleanup(func() { _ = s.Close() })
	const limit, goroutines, each = 10000, 8, 4000
	var passed atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				c := state.Check{RateLimit: state.RateLimit{Key: "hot", Limit: limit, Per: time.Hour}, Dedupe: state.Dedupe{Key: fmt.Sprint(g, "-", i), TTL: time.Millisecond}}
				if i%10 == 0 {
					c.RateLimit.Key = fmt.Sprint("cold-", g, "-", i) // a new cell, write-locked, beside the hot one
				}
				a, err := s.Admit(context.Background(), &c)
				if err != nil {
					t.Error(err)
					return
				}
				if c.RateLimit.Key == "hot" && !a.Limited {
					passed.Add(1)
				}
				if a.Dedupe == state.DedupeNew {
					_ = s.CommitClaim(context.Background(), c.Dedupe.Key, a.Claim, time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	if got := passed.Load(); got != limit {
		t.Fatalf("the hot key passed %d requests, want exactly %d", got, limit)
	}
}

// The memory store reads no context, and says so through state.Bound, so that the server
// settles a claim without making a deadline for it.
func TestIgnoresContext(t *testing.T) {
	s := New(Options{})
	c := &state.Check{Dedupe: state.Dedupe{Key: "k", TTL: time.Minute}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	a, err := s.Admit(ctx, c)
	if err != nil || a.Dedupe != state.DedupeNew {
		t.Fatalf("Admit with an ended context: %+v %v", a, err)
	}
	if err := s.CommitClaim(ctx, "k", a.Claim, time.Minute); err != nil {
		t.Fatalf("CommitClaim with an ended context: %v", err)
	}
	if !state.Bound(s).IgnoresContext() {
		t.Error("state.Bound(memory).IgnoresContext() = false")
	}
}

// TestNarrowLimitOnASharedKey: two limits on one key (a per-address limit two routes
// name): 100 an hour spent, then a check under 1 a second. It is refused, told the true
// wait (the wider limit's state stands: a refusal writes nothing), and it resets nothing:
// the spent hour stays spent, round after round.
func TestNarrowLimitOnASharedKey(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := state.Bound(New(Options{Now: func() time.Time { return now }}))
	ctx := context.Background()
	wide := &state.Check{RateLimit: state.RateLimit{Key: "ip:192.0.2.1", Limit: 100, Per: time.Hour}}
	narrow := &state.Check{RateLimit: state.RateLimit{Key: "ip:192.0.2.1", Limit: 1, Per: time.Second}}
	for range 100 {
		if adm, err := s.Admit(ctx, wide); err != nil || adm.Limited {
			t.Fatalf("wide limited early: %+v %v", adm, err)
		}
	}
	for round := range 5 {
		adm, err := s.Admit(ctx, narrow)
		if err != nil || !adm.Limited {
			t.Fatalf("round %d: the narrow check passed: %+v %v", round, adm, err)
		}
		if adm.RetryAfter < 59*time.Minute {
			t.Fatalf("round %d: Retry-After %v, want the wider state's wait (about an hour)", round, adm.RetryAfter)
		}
		now = now.Add(2 * time.Second)
		for range 100 {
			if adm, _ := s.Admit(ctx, wide); !adm.Limited {
				t.Fatalf("round %d: a request passed the spent 100 an hour after a refused check under 1 a second", round)
			}
		}
	}
	now = now.Add(time.Hour)
	if adm, err := s.Admit(ctx, narrow); err != nil || adm.Limited {
		t.Fatalf("after the wait it was told: %+v %v", adm, err)
	}
}
