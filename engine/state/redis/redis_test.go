package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/hookwall/hookwall/engine/internal/redistest"
	"github.com/hookwall/hookwall/engine/state"
	"github.com/hookwall/hookwall/engine/state/internal/gcra"
	"github.com/hookwall/hookwall/engine/state/statetest"
)

// outageSlack is what a failing call may take beyond Timeout on a busy test machine (40
// concurrent calls during a full test run took up to 100 ms more): a call that waited on a
// stalled server instead of its Timeout would hang for seconds, far past it.
const outageSlack = time.Second

func newStore(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawClient talks to the server directly, to inspect keys.
func rawClient(t testing.TB, srv *redistest.Server) *goredis.Client {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	statetest.Run(t, func(t *testing.T) state.Store {
		// One server, a key prefix per subtest; a generous timeout so the hammer subtests
		// measure semantics, not the machine's load.
		return state.Bound(newStore(t, Options{URL: srv.URL(), Prefix: fmt.Sprintf("conf%d:", n.Add(1)), Timeout: 2 * time.Second}))
	})
}

// The Lua transcription of GCRA answers exactly as the Go code, on awkward limits and on
// values near the 2^52 bound.
func TestLuaMatchesGo(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv)
	ctx := context.Background()
	script := goredis.NewScript(gcraLua + `
return gcra(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]))`)
	if err := script.Load(ctx, rc).Err(); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	limits := [][3]int64{
		{10, 60e6, 0}, {7, 60e6, 0}, {60, 60e6, 3}, {1, 60e6, 5}, {99999, 86400e6, 0},
		{13, 1000, 4}, {1000, 1, 0}, {997, 1e6, 0}, {1_000_000, 3600e6, 0},
		{1, 1, gcra.MaxExact - 1}, {3, 2, (gcra.MaxExact - 3) / 2},
	}
	type call struct {
		l              gcra.Limit
		now, tat, frac int64
		cmd            *goredis.Cmd
	}
	var calls []call
	pipe := rc.Pipeline()
	for _, lc := range limits {
		l, ok := gcra.New(lc[0], lc[1], lc[2])
		if !ok {
			t.Fatalf("New%v rejected", lc)
		}
		window := l.B * l.P
		for range 400 {
			now := int64(1_800_000_000_000_000) + rng.Int64N(1e12)
			var tat, frac int64
			switch rng.IntN(4) {
			case 0: // fresh key
			case 1: // in the past
				tat = now - rng.Int64N(1e9)
				frac = rng.Int64N(l.L)
			default: // ahead of now, anywhere up to just past the window
				tat = now + rng.Int64N(window/l.L+2)
				frac = rng.Int64N(l.L)
			}
			c := call{l: l, now: now, tat: tat, frac: frac}
			c.cmd = script.EvalSha(ctx, pipe, nil, now, tat, frac, l.L, l.P, l.B)
			calls = append(calls, c)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		got, err := c.cmd.Int64Slice()
		if err != nil {
			t.Fatal(err)
		}
		r := c.l.Decide(c.now, c.tat, c.frac)
		allowed := int64(0)
		if r.Allowed {
			allowed = 1
		}
		want := []int64{allowed, r.Tat, r.Frac, r.TTL, r.RetryUS, r.Remaining}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("limit %+v now %d tat %d frac %d: lua %v, go %v", c.l, c.now, c.tat, c.frac, got, want)
		}
	}
}

// Two gateways on one Redis behave as one: a 10/min limit passes exactly 10 of 30 requests
// spread over both, and a delivery committed through A is a duplicate at B.
func TestTwoGateways(t *testing.T) {
	srv := redistest.Start(t)
	a := newStore(t, Options{URL: srv.URL(), Timeout: 2 * time.Second})
	b := newStore(t, Options{URL: srv.URL(), Timeout: 2 * time.Second})
	ctx := context.Background()

	var passed, limited atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := range 30 {
		gw := a
		if i%2 == 1 {
			gw = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			adm, err := gw.Admit(ctx, &state.Check{RateLimit: state.RateLimit{Key: "fleet", Limit: 10, Per: time.Minute}})
			switch {
			case err != nil:
				errs <- err
			case adm.Limited:
				if adm.RetryAfter <= 0 || adm.RetryAfter > 6*time.Second {
					errs <- fmt.Errorf("RetryAfter %v outside (0, 6s]", adm.RetryAfter)
				}
				limited.Add(1)
			default:
				passed.Add(1)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if passed.Load() != 10 || limited.Load() != 20 {
		t.Fatalf("passed %d, limited %d; want 10 and 20", passed.Load(), limited.Load())
	}

	check := &state.Check{Dedupe: state.Dedupe{Key: "delivery-1", TTL: time.Hour}}
	if adm, err := a.Admit(ctx, check); err != nil || adm.Dedupe != state.DedupeNew {
		t.Fatalf("A claims: %+v %v", adm, err)
	}
	if adm, err := b.Admit(ctx, check); err != nil || adm.Dedupe != state.DedupeInFlight {
		t.Fatalf("B while A is in flight: %+v %v", adm, err)
	}
	if err := a.Commit(ctx, "delivery-1", time.Hour); err != nil {
		t.Fatal(err)
	}
	if adm, err := b.Admit(ctx, check); err != nil || adm.Dedupe != state.DedupeDelivered {
		t.Fatalf("B after A delivered: %+v %v", adm, err)
	}

	check.Dedupe.Key = "delivery-2"
	if adm, err := b.Admit(ctx, check); err != nil || adm.Dedupe != state.DedupeNew {
		t.Fatalf("B claims: %+v %v", adm, err)
	}
	if err := b.Release(ctx, "delivery-2"); err != nil {
		t.Fatal(err)
	}
	if adm, err := a.Admit(ctx, check); err != nil || adm.Dedupe != state.DedupeNew {
		t.Fatalf("A retries after B released: %+v %v", adm, err)
	}
}

// wantUnavailable calls fn and asserts it fails with ErrUnavailable within Timeout + slack.
func wantUnavailable(t *testing.T, what string, timeout time.Duration, fn func() error) {
	t.Helper()
	start := time.Now()
	err := fn()
	elapsed := time.Since(start)
	if !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("%s: error %v, want ErrUnavailable", what, err)
	}
	if elapsed > timeout+outageSlack {
		t.Fatalf("%s: failed after %v, want within %v + %v", what, elapsed, timeout, outageSlack)
	}
	t.Logf("%s: failed in %v: %v", what, elapsed, err)
}

// waitRecovered polls Admit until it works, within limit.
func waitRecovered(t *testing.T, s *Store, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		_, err := s.Admit(context.Background(), &state.Check{RateLimit: state.RateLimit{Key: "recover", Limit: 1000, Per: time.Second}})
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("not recovered within %v: %v", limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Redis killed: calls fail fast with ErrUnavailable; restarted on the same port: the same
// Store serves again within seconds.
func TestKillAndRestart(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 50 * time.Millisecond
	s := newStore(t, Options{URL: srv.URL(), Timeout: timeout})
	ctx := context.Background()
	check := &state.Check{RateLimit: state.RateLimit{Key: "k", Limit: 100, Per: time.Second}, Dedupe: state.Dedupe{Key: "d", TTL: time.Minute}}
	if _, err := s.Admit(ctx, check); err != nil {
		t.Fatal(err)
	}

	srv.Kill()
	// More failures than the pool size, so go-redis also passes through its dial back-off.
	for i := range 30 {
		wantUnavailable(t, fmt.Sprint("admit ", i), timeout, func() error { _, err := s.Admit(ctx, check); return err })
	}
	wantUnavailable(t, "commit", timeout, func() error { return s.Commit(ctx, "d", time.Minute) })
	wantUnavailable(t, "release", timeout, func() error { return s.Release(ctx, "d") })
	wantUnavailable(t, "ping", timeout, func() error { return s.Ping(ctx) })

	srv.Restart()
	took := waitRecovered(t, s, 5*time.Second)
	t.Logf("recovered %v after restart", took)
	// The new server is empty: the old claim is gone, a new one works.
	if adm, err := s.Admit(ctx, check); err != nil || adm.Dedupe != state.DedupeNew {
		t.Fatalf("after restart: %+v %v", adm, err)
	}
	if st := s.Stats(); st.Errors < 33 || st.Calls <= st.Errors {
		t.Fatalf("Stats = %+v, want at least 33 errors among more calls", st)
	}
}

// A server that stops answering (SIGSTOP) with connections open: every call gives up at
// Timeout, the gateway never hangs, and it recovers when the server continues.
func TestStalledServerTimesOut(t *testing.T) {
	srv := redistest.Start(t)
	const timeout = 80 * time.Millisecond
	s := newStore(t, Options{URL: srv.URL(), Timeout: timeout})
	ctx := context.Background()
	check := &state.Check{RateLimit: state.RateLimit{Key: "k", Limit: 100, Per: time.Second}}
	if _, err := s.Admit(ctx, check); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	resumed := false
	defer func() {
		if !resumed {
			srv.Resume()
		}
	}()
	for i := range 5 {
		wantUnavailable(t, fmt.Sprint("admit ", i), timeout, func() error { _, err := s.Admit(ctx, check); return err })
	}
	// Concurrent callers are bounded too (each waits for a connection at most Timeout).
	var wg sync.WaitGroup
	var slow atomic.Int64
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			_, err := s.Admit(ctx, check)
			if !errors.Is(err, state.ErrUnavailable) || time.Since(start) > timeout+outageSlack {
				slow.Add(1)
			}
		}()
	}
	wg.Wait()
	if slow.Load() != 0 {
		t.Fatalf("%d of 40 concurrent calls did not fail with ErrUnavailable within %v", slow.Load(), timeout+outageSlack)
	}
	wantUnavailable(t, "commit", timeout, func() error { return s.Commit(ctx, "d", time.Minute) })
	srv.Resume()
	resumed = true
	took := waitRecovered(t, s, 5*time.Second)
	t.Logf("recovered %v after resume", took)
}

// The caller's own deadline also bounds a call.
func TestCallerDeadline(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, Options{URL: srv.URL(), Timeout: 5 * time.Second})
	if _, err := s.Admit(context.Background(), &state.Check{RateLimit: state.RateLimit{Key: "k", Limit: 1, Per: time.Second}}); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	wantUnavailable(t, "admit", 50*time.Millisecond, func() error {
		_, err := s.Admit(ctx, &state.Check{RateLimit: state.RateLimit{Key: "k", Limit: 1, Per: time.Second}})
		return err
	})
	// So the server must hand it one: behind state.Bound, the store does not claim to ignore it.
	if state.Bound(s).IgnoresContext() {
		t.Error("state.Bound(redis).IgnoresContext() = true: the server would settle claims without a deadline")
	}
}

func TestTLSAndPassword(t *testing.T) {
	const password = "s3cret-pa55word"
	srv := redistest.StartConfig(t, redistest.Config{TLS: true, Password: password})
	if !strings.HasPrefix(srv.URL(), "rediss://") {
		t.Fatalf("URL %q is not rediss://", srv.URL())
	}
	ctx := context.Background()
	check := &state.Check{RateLimit: state.RateLimit{Key: "tls", Limit: 1, Per: time.Minute}, Dedupe: state.Dedupe{Key: "tls", TTL: time.Minute}}

	s := newStore(t, Options{URL: srv.URL(), TLSConfig: srv.ClientTLS(), Timeout: time.Second})
	if adm, err := s.Admit(ctx, check); err != nil || adm.Dedupe != state.DedupeNew || adm.Limited {
		t.Fatalf("over TLS with password: %+v %v", adm, err)
	}

	wrong := strings.Replace(srv.URL(), password, "wrong-password", 1)
	bad := newStore(t, Options{URL: wrong, TLSConfig: srv.ClientTLS(), Timeout: time.Second})
	_, err := bad.Admit(ctx, check)
	if !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("wrong password: %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "wrong-password") {
		t.Fatalf("error leaks the password: %v", err)
	}

	// Without the test CA the server's certificate is not trusted.
	untrusted := newStore(t, Options{URL: srv.URL(), Timeout: time.Second})
	_, err = untrusted.Admit(ctx, check)
	if !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("untrusted certificate: %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("error leaks the password: %v", err)
	}

	// Plain redis:// to a TLS port does not work either.
	plain := newStore(t, Options{URL: strings.Replace(srv.URL(), "rediss://", "redis://", 1), Timeout: 200 * time.Millisecond})
	if _, err := plain.Admit(ctx, check); !errors.Is(err, state.ErrUnavailable) {
		t.Fatalf("plain to TLS port: %v, want ErrUnavailable", err)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "http://x", "redis://:hunter2@127.0.0.1:notaport"} {
		s, err := New(Options{URL: u})
		if err == nil {
			_ = s.Close()
			t.Fatalf("New(%q) accepted", u)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error leaks the password: %v", err)
		}
	}
}

// Redis restarted or its script cache flushed: EVALSHA answers NOSCRIPT and Admit falls back
// to EVAL transparently.
func TestScriptFlushFallback(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv)
	s := newStore(t, Options{URL: srv.URL(), Timeout: time.Second})
	ctx := context.Background()
	for i := range 3 {
		if err := rc.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		adm, err := s.Admit(ctx, &state.Check{RateLimit: state.RateLimit{Key: "flush", Limit: 10, Per: time.Minute}})
		if err != nil || adm.Remaining != int64(9-i) {
			t.Fatalf("after SCRIPT FLUSH %d: %+v %v", i, adm, err)
		}
		if err := s.Release(ctx, "nothing"); err != nil {
			t.Fatalf("release after SCRIPT FLUSH: %v", err)
		}
	}
}

// Key layout and TTLs as documented: the claim lives at most InFlightTTL, the delivered
// marker the policy's TTL, the rate state until it is fresh again; the prefix separates
// deployments.
func TestKeysAndTTLs(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv)
	ctx := context.Background()
	s := newStore(t, Options{URL: srv.URL(), Timeout: time.Second, Prefix: "gw1:"})
	other := newStore(t, Options{URL: srv.URL(), Timeout: time.Second, Prefix: "gw2:"})

	adm, err := s.Admit(ctx, &state.Check{RateLimit: state.RateLimit{Key: "r", Limit: 10, Per: time.Minute}, Dedupe: state.Dedupe{Key: "d", TTL: 24 * time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	pttl := func(key string) time.Duration {
		t.Helper()
		d, err := rc.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if v, _ := rc.Get(ctx, "gw1:dd:d").Result(); adm.Claim == 0 || v != "f:"+strconv.FormatUint(adm.Claim, 10) {
		t.Fatalf("claim value %q, want f: and the Admit's claim %d", v, adm.Claim)
	}
	if d := pttl("gw1:dd:d"); d > state.InFlightTTL || d < state.InFlightTTL-10*time.Second {
		t.Fatalf("claim PTTL %v, want about %v", d, state.InFlightTTL)
	}
	if d := pttl("gw1:rl:r"); d <= 0 || d > 6*time.Second+time.Millisecond {
		t.Fatalf("rate PTTL %v, want in (0, 6s]", d)
	}
	if err := s.Commit(ctx, "d", 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if v, _ := rc.Get(ctx, "gw1:dd:d").Result(); v != "d" {
		t.Fatalf("delivered value %q, want d", v)
	}
	if d := pttl("gw1:dd:d"); d > 24*time.Hour || d < 24*time.Hour-10*time.Second {
		t.Fatalf("delivered PTTL %v, want about 24h", d)
	}
	if adm, err := other.Admit(ctx, &state.Check{Dedupe: state.Dedupe{Key: "d", TTL: time.Minute}}); err != nil || adm.Dedupe != state.DedupeNew {
		t.Fatalf("another prefix sees the key: %+v %v", adm, err)
	}
}

func TestStatsAndObserve(t *testing.T) {
	srv := redistest.Start(t)
	type obs struct {
		op  string
		err bool
	}
	var mu sync.Mutex
	var seen []obs
	s := newStore(t, Options{URL: srv.URL(), Timeout: time.Second, Observe: func(op string, d time.Duration, err error) {
		if d <= 0 {
			t.Errorf("Observe(%s) with duration %v", op, d)
		}
		mu.Lock()
		seen = append(seen, obs{op, err != nil})
		mu.Unlock()
	}})
	ctx := context.Background()
	if _, err := s.Admit(ctx, &state.Check{Dedupe: state.Dedupe{Key: "x", TTL: time.Minute}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "x", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	// Invalid checks and empty checks never reach Redis.
	_, _ = s.Admit(ctx, &state.Check{RateLimit: state.RateLimit{Key: "bad"}})
	_, _ = s.Admit(ctx, &state.Check{})
	srv.Kill()
	_ = s.Ping(ctx)

	want := []obs{{OpAdmit, false}, {OpCommit, false}, {OpRelease, false}, {OpPing, false}, {OpPing, true}}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Fatalf("observed %v, want %v", seen, want)
	}
	st := s.Stats()
	if st.Calls != 5 || st.Errors != 1 || st.Latency <= 0 {
		t.Fatalf("Stats = %+v, want 5 calls, 1 error, some latency", st)
	}
}

// URL query options are honoured, except timeouts and retries, which Timeout governs.
func TestURLOptions(t *testing.T) {
	s := newStore(t, Options{URL: "redis://127.0.0.1:1/2?pool_size=7&dial_timeout=10s&read_timeout=10s&max_retries=5", Timeout: 30 * time.Millisecond})
	o := s.c.Options()
	if o.PoolSize != 7 || o.DB != 2 {
		t.Fatalf("PoolSize %d DB %d, want 7 and 2", o.PoolSize, o.DB)
	}
	if o.DialTimeout != 30*time.Millisecond || o.ReadTimeout != 30*time.Millisecond || o.WriteTimeout != 30*time.Millisecond || o.PoolTimeout != 30*time.Millisecond {
		t.Fatalf("timeouts dial %v read %v write %v pool %v, want 30ms", o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout)
	}
	if o.MaxRetries != 0 || !o.ContextTimeoutEnabled { // go-redis stores "-1, no retries" as 0
		t.Fatalf("MaxRetries %d ContextTimeoutEnabled %v", o.MaxRetries, o.ContextTimeoutEnabled)
	}
	d := newStore(t, Options{URL: "redis://127.0.0.1:1"})
	if d.timeout != DefaultTimeout || d.prefix != DefaultPrefix {
		t.Fatalf("defaults: timeout %v prefix %q", d.timeout, d.prefix)
	}
}

// Behind state.Bound, a 14 KB key reaches Redis as its 71-byte digest: memory in Redis per
// key is bounded whatever a policy builds its keys from, and the digest is the one
// state.StoreKey names.
func TestLongKeysStoredAsDigests(t *testing.T) {
	srv := redistest.Start(t)
	rc := rawClient(t, srv)
	ctx := context.Background()
	s := state.Bound(newStore(t, Options{URL: srv.URL(), Timeout: time.Second, Prefix: "gw:"}))
	long := strings.Repeat("x", 14<<10)
	if _, err := s.Admit(ctx, &state.Check{RateLimit: state.RateLimit{Key: "r" + long, Limit: 10, Per: time.Minute}, Dedupe: state.Dedupe{Key: "d" + long, TTL: time.Hour}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, "d"+long, time.Hour); err != nil {
		t.Fatal(err)
	}
	keys, err := rc.Keys(ctx, "gw:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"gw:rl:" + state.StoreKey("r"+long): true, "gw:dd:" + state.StoreKey("d"+long): true}
	if len(keys) != 2 || !want[keys[0]] || !want[keys[1]] {
		t.Fatalf("Redis keys %q, want the two digests %v", keys, want)
	}
	for _, k := range keys {
		if len(k) > len("gw:dd:")+71 {
			t.Fatalf("key of %d bytes in Redis", len(k))
		}
	}
	if v, _ := rc.Get(ctx, "gw:dd:"+state.StoreKey("d"+long)).Result(); v != "d" {
		t.Fatalf("delivered marker %q, want d", v)
	}
}

// TestBlocksVersionAfterDataLoss: a Redis that lost its data counts the blocks' version
// again from nothing; the same number of writes after the loss must not give the version a
// gateway saw before it, or that gateway would never read the blocks the writes restored.
func TestBlocksVersionAfterDataLoss(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, Options{URL: srv.URL(), Timeout: 2 * time.Second})
	ctx := context.Background()
	write := func() int64 {
		t.Helper()
		for _, src := range []string{"192.0.2.1", "192.0.2.2"} {
			if err := s.PutBlock(ctx, src, []byte(`{}`)); err != nil {
				t.Fatal(err)
			}
		}
		v, err := s.BlocksVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := write()
	if err := rawClient(t, srv).FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if after := write(); after == before {
		t.Errorf("two writes after the data loss give version %d, the one seen before it", after)
	}
}

// TestNarrowLimitOnASharedKey: as the memory store's test of the name, on a real Redis and
// shorter: 50 of 100 per 2 s spent (the state a second ahead), a check under 1 per 100 ms
// is refused with the true wait, resets nothing, and passes once that wait is over.
func TestNarrowLimitOnASharedKey(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, Options{URL: srv.URL(), Timeout: 2 * time.Second})
	ctx := context.Background()
	wide := &state.Check{RateLimit: state.RateLimit{Key: "ip:192.0.2.1", Limit: 100, Per: 2 * time.Second}}
	narrow := &state.Check{RateLimit: state.RateLimit{Key: "ip:192.0.2.1", Limit: 1, Per: 100 * time.Millisecond}}
	start := time.Now()
	for range 50 {
		if adm, err := s.Admit(ctx, wide); err != nil || adm.Limited {
			t.Fatalf("wide: %+v %v", adm, err)
		}
	}
	adm, err := s.Admit(ctx, narrow)
	if err != nil || !adm.Limited || adm.RetryAfter < 800*time.Millisecond-time.Since(start) {
		t.Fatalf("the narrow check: %+v %v; want refused, told about a second", adm, err)
	}
	if left, err := s.Admit(ctx, wide); err != nil || left.Limited || left.Remaining < 40 {
		t.Fatalf("the wide limit after the refused narrow check: %+v %v; want about 49 left", left, err)
	}
	time.Sleep(adm.RetryAfter + 100*time.Millisecond)
	if adm, err := s.Admit(ctx, narrow); err != nil || adm.Limited {
		t.Fatalf("after the wait it was told: %+v %v", adm, err)
	}
}

// TestTLSConfigNeedsRediss: a TLSConfig (a private CA, a client certificate) handed with a
// plain redis:// URL is an error, not a connection without TLS that sends the password and
// every key in clear.
func TestTLSConfigNeedsRediss(t *testing.T) {
	srv := redistest.Start(t)
	s, err := New(Options{URL: strings.Replace(srv.URL(), "redis://", "redis://:hunter2@", 1), TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}, Timeout: time.Second})
	if err == nil {
		_, aerr := s.Admit(context.Background(), &state.Check{Dedupe: state.Dedupe{Key: "k", TTL: time.Minute}})
		_ = s.Close()
		t.Fatalf("New accepted a TLSConfig with a redis:// URL (Admit then: %v)", aerr)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks the password: %v", err)
	}
}
