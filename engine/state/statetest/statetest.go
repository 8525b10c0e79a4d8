// Package statetest is the conformance suite every state.Store passes: the memory and the
// Redis backends run the very same cases with the same numbers (the two must never
// disagree). It uses real time with short periods and bounded sleeps, and tolerates a slow
// machine: a timing assertion that depends on "not too much time has passed" is checked only
// when the measured time says it applies.
package statetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/state"
)

// slack covers the difference between the test's clock and the store's (Redis TIME) and the
// store's microsecond rounding.
const slack = 5 * time.Millisecond

// Run runs the suite. newStore returns a fresh, empty store for one subtest (a Redis store may
// share the server, with its own key prefix), as the gateway runs it: the backend behind
// state.Bound; the suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) state.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, s state.Store)
	}{
		{"Empty", testEmpty},
		{"ExactCount", testExactCount},
		{"FractionalInterval", testFractionalInterval},
		{"Burst", testBurst},
		{"BurstAboveLimit", testBurstAboveLimit},
		{"Refill", testRefill},
		{"FullRefill", testFullRefill},
		{"SeparateKeys", testSeparateKeys},
		{"LongKeys", testLongKeys},
		{"OddKeys", testOddKeys},
		{"DedupeLifecycle", testDedupeLifecycle},
		{"ReleaseThenRetry", testReleaseThenRetry},
		{"CommitWithoutClaim", testCommitWithoutClaim},
		{"DedupeTTL", testDedupeTTL},
		{"ClaimTTL", testClaimTTL},
		{"DedupeBeforeRate", testDedupeBeforeRate},
		{"LimitedLeavesNoClaim", testLimitedLeavesNoClaim},
		{"ConcurrentRate", testConcurrentRate},
		{"ConcurrentDedupe", testConcurrentDedupe},
		{"ConcurrentBoth", testConcurrentBoth},
		{"Invalid", testInvalid},
		{"LargeLimits", testLargeLimits},
		{"Close", testClose},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { _ = s.Close() })
			c.fn(t, s)
		})
	}
}

func admit(t *testing.T, s state.Store, c state.Check) state.Admission {
	t.Helper()
	a, err := s.Admit(context.Background(), &c)
	if err != nil {
		t.Fatalf("Admit(%+v): %v", c, err)
	}
	return a
}

func commit(t *testing.T, s state.Store, key string, ttl time.Duration) {
	t.Helper()
	if err := s.Commit(context.Background(), key, ttl); err != nil {
		t.Fatalf("Commit(%q): %v", key, err)
	}
}

func release(t *testing.T, s state.Store, key string) {
	t.Helper()
	if err := s.Release(context.Background(), key); err != nil {
		t.Fatalf("Release(%q): %v", key, err)
	}
}

func wantDedupe(t *testing.T, s state.Store, key string, want state.DedupeStatus) {
	t.Helper()
	a := admit(t, s, state.Check{Dedupe: state.Dedupe{Key: key, TTL: time.Minute}})
	if a.Dedupe != want {
		t.Fatalf("dedupe %q: got %v, want %v", key, a.Dedupe, want)
	}
	if a.Limited {
		t.Fatalf("dedupe-only check %q came back Limited", key)
	}
}

// ceilSeconds is what the server puts in Retry-After.
func ceilSeconds(d time.Duration) int64 { return int64(math.Ceil(d.Seconds())) }

// passN asserts that n requests pass with Remaining n-1 … 0 and returns when the first ran.
func passN(t *testing.T, s state.Store, c state.Check, n int64) time.Time {
	t.Helper()
	start := time.Now()
	for i := range n {
		a := admit(t, s, c)
		if a.Limited {
			t.Fatalf("request %d of %d limited (RetryAfter %v)", i+1, n, a.RetryAfter)
		}
		if want := n - 1 - i; a.Remaining != want {
			t.Fatalf("request %d: Remaining = %d, want %d", i+1, a.Remaining, want)
		}
		if a.Dedupe != state.DedupeNone {
			t.Fatalf("request %d: Dedupe = %v without a dedupe key", i+1, a.Dedupe)
		}
	}
	return start
}

// wantLimited asserts a limited answer whose RetryAfter is interval minus the time since
// start (the state was last advanced at or after start).
func wantLimited(t *testing.T, s state.Store, c state.Check, interval time.Duration, start time.Time) state.Admission {
	t.Helper()
	a := admit(t, s, c)
	elapsed := time.Since(start)
	if !a.Limited {
		t.Fatalf("not limited after the burst (elapsed %v)", elapsed)
	}
	if a.RetryAfter <= 0 || a.RetryAfter > interval {
		t.Fatalf("RetryAfter = %v, want in (0, %v]", a.RetryAfter, interval)
	}
	if lo := interval - elapsed - slack; a.RetryAfter < lo {
		t.Fatalf("RetryAfter = %v, want >= %v (interval %v, elapsed %v)", a.RetryAfter, lo, interval, elapsed)
	}
	if a.Remaining != 0 || a.Dedupe != state.DedupeNone {
		t.Fatalf("limited answer carries Remaining %d, Dedupe %v", a.Remaining, a.Dedupe)
	}
	return a
}

func testEmpty(t *testing.T, s state.Store) {
	if a := admit(t, s, state.Check{}); a != (state.Admission{}) {
		t.Fatalf("empty check: %+v, want the zero Admission", a)
	}
}

// 10 per minute: 10 pass at once, the 11th and 12th wait the 6 s interval.
func testExactCount(t *testing.T, s state.Store) {
	c := state.Check{RateLimit: state.RateLimit{Key: "exact", Limit: 10, Per: time.Minute}}
	start := passN(t, s, c, 10)
	a := wantLimited(t, s, c, 6*time.Second, start)
	if time.Since(start) < time.Second {
		if got := ceilSeconds(a.RetryAfter); got != 6 {
			t.Fatalf("Retry-After seconds = %d, want 6 (RetryAfter %v)", got, a.RetryAfter)
		}
	}
	b := wantLimited(t, s, c, 6*time.Second, start)
	if b.RetryAfter > a.RetryAfter {
		t.Fatalf("RetryAfter grew from %v to %v while limited", a.RetryAfter, b.RetryAfter)
	}
}

// 7 per minute: the interval 8.571428…s is not a whole number of microseconds; the count is
// still exact and RetryAfter rounds the interval up to the next microsecond.
func testFractionalInterval(t *testing.T, s state.Store) {
	c := state.Check{RateLimit: state.RateLimit{Key: "frac", Limit: 7, Per: time.Minute}}
	start := passN(t, s, c, 7)
	wantLimited(t, s, c, 8571429*time.Microsecond, start)
}

func testBurst(t *testing.T, s state.Store) {
	c := state.Check{RateLimit: state.RateLimit{Key: "burst", Limit: 60, Per: time.Minute, Burst: 3}}
	start := passN(t, s, c, 3)
	wantLimited(t, s, c, time.Second, start)
}

func testBurstAboveLimit(t *testing.T, s state.Store) {
	c := state.Check{RateLimit: state.RateLimit{Key: "burst-above", Limit: 1, Per: time.Minute, Burst: 5}}
	start := passN(t, s, c, 5)
	wantLimited(t, s, c, time.Minute, start)
}

// One per second: limited right after, still limited halfway, passes once RetryAfter is over.
func testRefill(t *testing.T, s state.Store) {
	c := state.Check{RateLimit: state.RateLimit{Key: "refill", Limit: 1, Per: time.Second}}
	start := passN(t, s, c, 1)
	a := wantLimited(t, s, c, time.Second, start)
	limitedAt := time.Now()
	time.Sleep(a.RetryAfter / 2)
	b := admit(t, s, c)
	if since := time.Since(limitedAt); since+slack < a.RetryAfter && !b.Limited {
		t.Fatalf("passed %v after a RetryAfter of %v", since, a.RetryAfter)
	}
	time.Sleep(time.Until(limitedAt.Add(a.RetryAfter + 20*time.Millisecond)))
	if got := admit(t, s, c); got.Limited {
		t.Fatalf("still limited after RetryAfter %v elapsed (new RetryAfter %v)", a.RetryAfter, got.RetryAfter)
	}
	if got := admit(t, s, c); !got.Limited {
		t.Fatal("second request in the new interval passed")
	}
}

// After a whole period of silence the full burst is back, and no more.
func testFullRefill(t *testing.T, s state.Store) {
	c := state.Check{RateLimit: state.RateLimit{Key: "full", Limit: 3, Per: 600 * time.Millisecond}}
	start := passN(t, s, c, 3)
	spent := time.Now() // the third request ran before this
	wantLimited(t, s, c, 200*time.Millisecond, start)
	time.Sleep(time.Until(spent.Add(620 * time.Millisecond)))
	start = passN(t, s, c, 3)
	if a := admit(t, s, c); !a.Limited && time.Since(start) < 200*time.Millisecond-slack {
		t.Fatal("a fourth request passed after the refill")
	}
}

// Rate keys are independent of each other and of dedupe keys with the same text.
func testSeparateKeys(t *testing.T, s state.Store) {
	a := state.Check{RateLimit: state.RateLimit{Key: "same", Limit: 1, Per: time.Minute}}
	b := state.Check{RateLimit: state.RateLimit{Key: "other", Limit: 1, Per: time.Minute}}
	passN(t, s, a, 1)
	passN(t, s, b, 1)
	if !admit(t, s, a).Limited || !admit(t, s, b).Limited {
		t.Fatal("a second request passed a 1/min limit")
	}
	wantDedupe(t, s, "same", state.DedupeNew)
	wantDedupe(t, s, "same", state.DedupeInFlight)
	if got := admit(t, s, state.Check{RateLimit: state.RateLimit{Key: "fresh", Limit: 1, Per: time.Minute}}); got.Limited {
		t.Fatal("a fresh rate key started limited")
	}
}

// Keys longer than state.MaxKeyLen reach the backend as digests: 14 KB keys that differ in
// their last byte stay apart, keys on either side of the length bound behave alike, and a
// key that spells out another key's digest is a key of its own.
func testLongKeys(t *testing.T, s state.Store) {
	long := strings.Repeat("k", 14<<10)
	a, b := long+"a", long+"b"
	wantDedupe(t, s, a, state.DedupeNew)
	wantDedupe(t, s, b, state.DedupeNew)
	wantDedupe(t, s, a, state.DedupeInFlight)
	commit(t, s, a, time.Minute)
	wantDedupe(t, s, a, state.DedupeDelivered)
	wantDedupe(t, s, b, state.DedupeInFlight)
	release(t, s, b)
	wantDedupe(t, s, b, state.DedupeNew)
	wantDedupe(t, s, state.StoreKey(a), state.DedupeNew)
	for _, n := range []int{state.MaxKeyLen, state.MaxKeyLen + 1} {
		k := strings.Repeat("e", n)
		wantDedupe(t, s, k, state.DedupeNew)
		wantDedupe(t, s, k, state.DedupeInFlight)
		commit(t, s, k, time.Minute)
		wantDedupe(t, s, k, state.DedupeDelivered)
	}
	ra := state.Check{RateLimit: state.RateLimit{Key: a, Limit: 1, Per: time.Minute}}
	rb := state.Check{RateLimit: state.RateLimit{Key: b, Limit: 1, Per: time.Minute}}
	passN(t, s, ra, 1)
	passN(t, s, rb, 1)
	if !admit(t, s, ra).Limited || !admit(t, s, rb).Limited {
		t.Fatal("a second request passed a 1/min limit on a long key")
	}
}

// Keys are bytes, whatever they hold: a key with CR LF, NUL, spaces, a Redis hash tag or a
// glob is its own key, and never a prefix of another (a key and the same key with a NUL and
// more after it stay apart).
func testOddKeys(t *testing.T, s state.Store) {
	keys := []string{"a\r\nSET b 1\r\n", "a b", "{a}", "*", "a\x00b", "a", "\xff\xfe", "$1\r\na"}
	for _, k := range keys {
		wantDedupe(t, s, k, state.DedupeNew)
		passN(t, s, state.Check{RateLimit: state.RateLimit{Key: k, Limit: 1, Per: time.Minute}}, 1)
	}
	for _, k := range keys {
		wantDedupe(t, s, k, state.DedupeInFlight)
		if !admit(t, s, state.Check{RateLimit: state.RateLimit{Key: k, Limit: 1, Per: time.Minute}}).Limited {
			t.Fatalf("rate key %q: a second request passed a 1/min limit", k)
		}
	}
	commit(t, s, keys[0], time.Minute)
	wantDedupe(t, s, keys[0], state.DedupeDelivered)
	wantDedupe(t, s, "b", state.DedupeNew)
}

func testDedupeLifecycle(t *testing.T, s state.Store) {
	wantDedupe(t, s, "evt-1", state.DedupeNew)
	wantDedupe(t, s, "evt-1", state.DedupeInFlight)
	wantDedupe(t, s, "evt-1", state.DedupeInFlight)
	commit(t, s, "evt-1", time.Minute)
	wantDedupe(t, s, "evt-1", state.DedupeDelivered)
	release(t, s, "evt-1") // a late Release must not undo a delivery
	wantDedupe(t, s, "evt-1", state.DedupeDelivered)
	wantDedupe(t, s, "evt-2", state.DedupeNew)
}

func testReleaseThenRetry(t *testing.T, s state.Store) {
	wantDedupe(t, s, "retry", state.DedupeNew)
	release(t, s, "retry")
	wantDedupe(t, s, "retry", state.DedupeNew)
	wantDedupe(t, s, "retry", state.DedupeInFlight)
	release(t, s, "never-claimed") // no error, no effect
	wantDedupe(t, s, "never-claimed", state.DedupeNew)
}

func testCommitWithoutClaim(t *testing.T, s state.Store) {
	commit(t, s, "unclaimed", time.Minute)
	wantDedupe(t, s, "unclaimed", state.DedupeDelivered)
}

// A claim lives Check.InFlight, whatever the delivered marker's TTL: longer than a short
// one (a duplicate of a slow request still gets in-flight), shorter than a long one (a claim
// nobody settles is gone soon after its request's longest time).
func testClaimTTL(t *testing.T, s state.Store) {
	const inFlight = 300 * time.Millisecond
	start := time.Now()
	for _, key := range []string{"claim-long-ttl", "claim-short-ttl"} {
		ttl := time.Hour
		if key == "claim-short-ttl" {
			ttl = 50 * time.Millisecond
		}
		if a := admit(t, s, state.Check{Dedupe: state.Dedupe{Key: key, TTL: ttl}, InFlight: inFlight}); a.Dedupe != state.DedupeNew {
			t.Fatalf("%s: first claim: %v", key, a.Dedupe)
		}
	}
	written := time.Now()
	time.Sleep(time.Until(start.Add(150 * time.Millisecond)))
	if time.Since(start) < inFlight-slack {
		wantDedupe(t, s, "claim-short-ttl", state.DedupeInFlight)
		wantDedupe(t, s, "claim-long-ttl", state.DedupeInFlight)
	}
	time.Sleep(time.Until(written.Add(inFlight + 50*time.Millisecond)))
	wantDedupe(t, s, "claim-long-ttl", state.DedupeNew)
	wantDedupe(t, s, "claim-short-ttl", state.DedupeNew)
}

func testDedupeTTL(t *testing.T, s state.Store) {
	const ttl = 300 * time.Millisecond
	start := time.Now()
	a := admit(t, s, state.Check{Dedupe: state.Dedupe{Key: "short-claim", TTL: ttl}})
	if a.Dedupe != state.DedupeNew {
		t.Fatalf("first claim: %v", a.Dedupe)
	}
	commit(t, s, "short-delivered", ttl)
	written := time.Now() // both keys were written before this
	if time.Since(start) < ttl-slack {
		wantDedupe(t, s, "short-claim", state.DedupeInFlight)
		wantDedupe(t, s, "short-delivered", state.DedupeDelivered)
	}
	time.Sleep(time.Until(written.Add(ttl + 50*time.Millisecond)))
	wantDedupe(t, s, "short-claim", state.DedupeNew)
	wantDedupe(t, s, "short-delivered", state.DedupeNew)
}

// InFlight and Delivered answers consume no rate token.
func testDedupeBeforeRate(t *testing.T, s state.Store) {
	c := state.Check{RateLimit: state.RateLimit{Key: "dfirst", Limit: 2, Per: time.Minute}, Dedupe: state.Dedupe{Key: "dfirst-1", TTL: time.Minute}}
	if a := admit(t, s, c); a.Limited || a.Dedupe != state.DedupeNew || a.Remaining != 1 {
		t.Fatalf("first: %+v", a)
	}
	for range 5 {
		if a := admit(t, s, c); a.Limited || a.Dedupe != state.DedupeInFlight {
			t.Fatalf("in-flight replay: %+v", a)
		}
	}
	commit(t, s, "dfirst-1", time.Minute)
	for range 5 {
		if a := admit(t, s, c); a.Limited || a.Dedupe != state.DedupeDelivered {
			t.Fatalf("delivered replay: %+v", a)
		}
	}
	c.Dedupe.Key = "dfirst-2"
	if a := admit(t, s, c); a.Limited || a.Dedupe != state.DedupeNew || a.Remaining != 0 {
		t.Fatalf("second distinct key: %+v (replays must not have used tokens)", a)
	}
}

func testLimitedLeavesNoClaim(t *testing.T, s state.Store) {
	c := state.Check{RateLimit: state.RateLimit{Key: "noclaim", Limit: 1, Per: time.Minute}, Dedupe: state.Dedupe{Key: "noclaim-1", TTL: time.Minute}}
	if a := admit(t, s, c); a.Limited || a.Dedupe != state.DedupeNew {
		t.Fatalf("first: %+v", a)
	}
	c.Dedupe.Key = "noclaim-2"
	a := admit(t, s, c)
	if !a.Limited || a.Dedupe != state.DedupeNone || a.RetryAfter <= 0 {
		t.Fatalf("second: %+v, want Limited with DedupeNone", a)
	}
	wantDedupe(t, s, "noclaim-2", state.DedupeNew)
}

// hammer runs n goroutines released together.
func hammer(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	gate := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-gate
			fn(i)
		}()
	}
	ready.Wait()
	close(gate)
	done.Wait()
}

func testConcurrentRate(t *testing.T, s state.Store) {
	const goroutines, each, limit = 32, 4, 50
	c := state.Check{RateLimit: state.RateLimit{Key: "hammer", Limit: limit, Per: time.Minute}}
	var passed, limited atomic.Int64
	errs := make(chan error, goroutines*each)
	hammer(goroutines, func(int) {
		for range each {
			a, err := s.Admit(context.Background(), &c)
			switch {
			case err != nil:
				errs <- err
			case a.Limited:
				limited.Add(1)
			default:
				passed.Add(1)
			}
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if passed.Load() != limit || limited.Load() != goroutines*each-limit {
		t.Fatalf("passed %d, limited %d; want exactly %d and %d", passed.Load(), limited.Load(), limit, goroutines*each-limit)
	}
}

func testConcurrentDedupe(t *testing.T, s state.Store) {
	const goroutines = 48
	var counts [4]atomic.Int64
	errs := make(chan error, goroutines)
	hammer(goroutines, func(int) {
		a, err := s.Admit(context.Background(), &state.Check{Dedupe: state.Dedupe{Key: "race", TTL: time.Minute}})
		if err != nil {
			errs <- err
			return
		}
		counts[a.Dedupe].Add(1)
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if counts[state.DedupeNew].Load() != 1 || counts[state.DedupeInFlight].Load() != goroutines-1 {
		t.Fatalf("new %d, in flight %d; want exactly 1 and %d", counts[state.DedupeNew].Load(), counts[state.DedupeInFlight].Load(), goroutines-1)
	}
}

// Distinct dedupe keys racing for a small rate limit: exactly limit claims, and the limited
// ones leave no claim behind. Then one dedupe key racing under a rate limit: one claim, one
// token.
func testConcurrentBoth(t *testing.T, s state.Store) {
	const goroutines, limit = 40, 10
	var claimed, limited atomic.Int64
	var mu sync.Mutex
	var limitedKeys []string
	errs := make(chan error, goroutines)
	hammer(goroutines, func(i int) {
		key := fmt.Sprintf("both-%d", i)
		a, err := s.Admit(context.Background(), &state.Check{RateLimit: state.RateLimit{Key: "both", Limit: limit, Per: time.Minute}, Dedupe: state.Dedupe{Key: key, TTL: time.Minute}})
		switch {
		case err != nil:
			errs <- err
		case a.Limited && a.Dedupe == state.DedupeNone:
			limited.Add(1)
			mu.Lock()
			limitedKeys = append(limitedKeys, key)
			mu.Unlock()
		case !a.Limited && a.Dedupe == state.DedupeNew:
			claimed.Add(1)
		default:
			errs <- fmt.Errorf("unexpected admission %+v", a)
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if claimed.Load() != limit || limited.Load() != goroutines-limit {
		t.Fatalf("claimed %d, limited %d; want exactly %d and %d", claimed.Load(), limited.Load(), limit, goroutines-limit)
	}
	for _, k := range limitedKeys {
		wantDedupe(t, s, k, state.DedupeNew)
	}

	var news atomic.Int64
	errs = make(chan error, goroutines)
	c := state.Check{RateLimit: state.RateLimit{Key: "both-one", Limit: 5, Per: time.Minute}, Dedupe: state.Dedupe{Key: "both-one", TTL: time.Minute}}
	hammer(goroutines, func(int) {
		a, err := s.Admit(context.Background(), &c)
		switch {
		case err != nil:
			errs <- err
		case a.Limited:
			errs <- fmt.Errorf("limited although only one request can claim: %+v", a)
		case a.Dedupe == state.DedupeNew:
			news.Add(1)
		case a.Dedupe != state.DedupeInFlight:
			errs <- fmt.Errorf("unexpected admission %+v", a)
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if news.Load() != 1 {
		t.Fatalf("%d claims for one key, want 1", news.Load())
	}
	if a := admit(t, s, state.Check{RateLimit: state.RateLimit{Key: "both-one", Limit: 5, Per: time.Minute}}); a.Remaining != 3 {
		t.Fatalf("Remaining = %d after one claim and this request, want 3", a.Remaining)
	}
}

func testInvalid(t *testing.T, s state.Store) {
	bad := []state.Check{
		{RateLimit: state.RateLimit{Key: "k", Limit: 0, Per: time.Minute}},
		{RateLimit: state.RateLimit{Key: "k", Limit: -1, Per: time.Minute}},
		{RateLimit: state.RateLimit{Key: "k", Limit: 1, Per: 0}},
		{RateLimit: state.RateLimit{Key: "k", Limit: 1, Per: time.Nanosecond * 999}},
		{RateLimit: state.RateLimit{Key: "k", Limit: 1, Per: time.Minute, Burst: -1}},
		{Dedupe: state.Dedupe{Key: "k"}},
		{Dedupe: state.Dedupe{Key: "k", TTL: time.Microsecond}},
		{RateLimit: state.RateLimit{Key: "k", Limit: 100003, Per: 24 * time.Hour}},
	}
	for _, c := range bad {
		_, err := s.Admit(context.Background(), &c)
		if !errors.Is(err, state.ErrInvalidCheck) || errors.Is(err, state.ErrUnavailable) {
			t.Errorf("Admit(%+v) error = %v, want ErrInvalidCheck only", c, err)
		}
	}
	if err := s.Commit(context.Background(), "k", 0); !errors.Is(err, state.ErrInvalidCheck) {
		t.Errorf("Commit with ttl 0: %v, want ErrInvalidCheck", err)
	}
	// Nothing was claimed or counted by the rejected checks.
	wantDedupe(t, s, "k", state.DedupeNew)
	passN(t, s, state.Check{RateLimit: state.RateLimit{Key: "k", Limit: 1, Per: time.Minute}}, 1)
}

// Large but exact limits work; the reduction to lowest terms keeps 99999/day in range.
func testLargeLimits(t *testing.T, s state.Store) {
	c := state.Check{RateLimit: state.RateLimit{Key: "big", Limit: 99999, Per: 24 * time.Hour}}
	if a := admit(t, s, c); a.Limited || a.Remaining != 99998 {
		t.Fatalf("first of 99999/day: %+v", a)
	}
	if a := admit(t, s, c); a.Limited || a.Remaining != 99997 {
		t.Fatalf("second of 99999/day: %+v", a)
	}
	c = state.Check{RateLimit: state.RateLimit{Key: "big-burst", Limit: 1_000_000, Per: time.Hour}}
	if a := admit(t, s, c); a.Limited || a.Remaining != 999_999 {
		t.Fatalf("1e6/hour: %+v", a)
	}
}

func testClose(t *testing.T, s state.Store) {
	wantDedupe(t, s, "closing", state.DedupeNew)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	ctx := context.Background()
	if _, err := s.Admit(ctx, &state.Check{Dedupe: state.Dedupe{Key: "closing", TTL: time.Minute}}); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Admit after Close: %v, want ErrUnavailable", err)
	}
	if err := s.Commit(ctx, "closing", time.Minute); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Commit after Close: %v, want ErrUnavailable", err)
	}
	if err := s.Release(ctx, "closing"); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("Release after Close: %v, want ErrUnavailable", err)
	}
}
