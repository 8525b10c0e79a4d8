package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
	"github.com/hookwall/hookwall/engine/state"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// postOnlyQuery prepares a policy that allows POST only, on the compiled evaluator (the one
// a cross-check compares against topdown).
func postOnlyQuery(t *testing.T) *Query {
	t.Helper()
	src := map[string]string{"p.rego": "package p\nallow if input.request.method == \"POST\"\n"}
	set, err := LoadModules(context.Background(), src, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return prepareCompiled(t, set, "p")
}

// TestCrossCheckQueue: every offered job is checked once; agreeing decisions are not
// reported; a difference is reported, and moves the query to topdown only with Demote; a
// full queue drops instead of waiting.
func TestCrossCheckQueue(t *testing.T) {
	q := postOnlyQuery(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	var mu sync.Mutex
	var diverged []string
	c := NewCrossCheck(16, quiet, func(route string) { mu.Lock(); diverged = append(diverged, route); mu.Unlock() })
	post, get := doc(requestValue("POST", "/", nil, "")), doc(requestValue("GET", "/", nil, ""))
	for i := range 10 {
		in, d := post, Decision{Allow: true, Status: 403}
		if i%2 == 1 {
			in, d = get, Decision{Status: 403}
		}
		if !c.Offer(CrossCheckJob{Route: "agree", Query: q, Build: built(in), Decision: d, Timeout: time.Second}) {
			t.Fatal("a job was dropped with room in the queue")
		}
	}
	// The compiled evaluator (wrongly) allowed a GET: reported, not moved.
	c.Offer(CrossCheckJob{Route: "log", DecisionID: "d-1", Query: q, Build: built(get), Decision: Decision{Allow: true, Status: 403}, Timeout: time.Second})
	testutil.WaitFor(t, func() bool { return c.Checked() == 11 })
	mu.Lock()
	if len(diverged) != 1 || diverged[0] != "log" {
		t.Errorf("divergences reported %v, want [log]", diverged)
	}
	mu.Unlock()
	if !q.Compiled() {
		t.Fatal("a divergence without Demote moved the query")
	}
	// An error on one side only is a divergence too; with Demote the query moves.
	c.Offer(CrossCheckJob{Route: "opa", DecisionID: "d-2", Query: q, Build: built(post), Err: context.Canceled, Timeout: time.Second, Demote: true})
	testutil.WaitFor(t, func() bool { return c.Checked() == 12 })
	if q.Compiled() {
		t.Fatal("a divergence with Demote left the query compiled")
	}
	if ev, why := q.Evaluator(); ev != "opa" || !strings.Contains(why, "decision d-2") {
		t.Errorf("evaluator %s (%s), want opa naming the decision", ev, why)
	}
	if !q.NeedsRequest() || !q.NeedsDocument() {
		t.Error("a query moved to topdown must be given the whole input")
	}

	full := NewCrossCheck(0, quiet, nil)
	if full.Offer(CrossCheckJob{Route: "r", Query: q, Build: built(post), Timeout: time.Second}) || full.Dropped() != 1 {
		t.Errorf("a full queue took the job (dropped %d)", full.Dropped())
	}
}

// TestCrossCheckWorkerLingers: jobs that come one at a time, each checked before the next
// arrives, are evaluated by one worker (whose stack topdown grew once), not a goroutine per
// job; once no job came for the linger, the worker ends, and the next job starts another.
func TestCrossCheckWorkerLingers(t *testing.T) {
	q := postOnlyQuery(t)
	c := NewCrossCheck(4, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	c.linger = 300 * time.Millisecond
	post := doc(requestValue("POST", "/", nil, ""))
	for i := range 5 {
		if !c.Offer(CrossCheckJob{Route: "r", Query: q, Build: built(post), Decision: Decision{Allow: true, Status: 403}, Timeout: time.Second}) {
			t.Fatal("dropped")
		}
		testutil.WaitFor(t, func() bool { return c.Checked() == uint64(i+1) })
		time.Sleep(10 * time.Millisecond)
	}
	if n := c.workers.Load(); n != 1 {
		t.Errorf("%d workers for five jobs a few milliseconds apart, want 1", n)
	}
	testutil.WaitFor(t, func() bool { return !c.running.Load() })
	c.Offer(CrossCheckJob{Route: "r", Query: q, Build: built(post), Decision: Decision{Allow: true, Status: 403}, Timeout: time.Second})
	testutil.WaitFor(t, func() bool { return c.Checked() == 6 })
	if n := c.workers.Load(); n != 2 {
		t.Errorf("%d workers after the first ended idle, want 2", n)
	}
}

// built hands the cross-check an input document already made.
func built(v ast.Value) func() ast.Value { return func() ast.Value { return v } }

// TestCrossCheckCeiling: Admit at 50 a second holds five tokens (a tenth of a second's) and
// starts full; then it admits one sample every 20 ms of the readings it is given, whatever
// their order, and counts the refused; 0 is no ceiling.
func TestCrossCheckCeiling(t *testing.T) {
	c := NewCrossCheck(1, nil, nil)
	at := func(d time.Duration) time.Time { return c.epoch.Add(time.Second + d) }
	admitted := 0
	for range 20 { // a burst at one instant: the bucket's five
		if c.Admit(at(0), 50) {
			admitted++
		}
	}
	if admitted != 5 || c.Skipped() != 15 {
		t.Fatalf("a burst of 20: %d admitted, %d skipped; want 5 and 15", admitted, c.Skipped())
	}
	// 1,000 samples over the next second, a millisecond apart: one token every 20 ms.
	admitted = 0
	for i := range 1000 {
		if c.Admit(at(time.Duration(i+1)*time.Millisecond), 50) {
			admitted++
		}
	}
	if admitted != 50 {
		t.Errorf("a second of samples a millisecond apart at 50 a second: %d admitted, want 50", admitted)
	}
	// A reading older than the last admitted sample's finds no token it has not paid for.
	if c.Admit(at(500*time.Millisecond), 50) {
		t.Error("an older reading was admitted with the bucket empty")
	}
	// After a quiet second the bucket is full again, and no fuller.
	admitted = 0
	for range 20 {
		if c.Admit(at(3*time.Second), 50) {
			admitted++
		}
	}
	if admitted != 5 {
		t.Errorf("after a quiet second: %d admitted, want the bucket's 5", admitted)
	}
	skipped := c.Skipped()
	for range 100 {
		if !c.Admit(at(3*time.Second), 0) {
			t.Fatal("no ceiling refused a sample")
		}
	}
	if c.Skipped() != skipped {
		t.Error("no ceiling counted a skip")
	}
	// A ceiling above one a nanosecond admits what comes.
	if !c.Admit(at(3*time.Second), 2_000_000_000) {
		t.Error("a ceiling of 2e9 a second refused a sample")
	}
}

// BenchmarkCrossCheckReference is the worker's cost of one cross-check of the benchmark's
// reference decision ("check": the evaluation with topdown, its deadline and the comparison)
// beside topdown's evaluation alone ("eval") on the same built document.
func BenchmarkCrossCheckReference(b *testing.B) {
	q, in, _ := signedPush(b, "../../examples/bench/policies", "bench.reference", "bench-secret", "/reference", "127.0.0.1")
	d, err := q.Eval(context.Background(), in, nil)
	if err != nil {
		b.Fatal(err)
	}
	c := NewCrossCheck(1, slog.New(slog.NewTextHandler(io.Discard, nil)), func(string) { b.Fatal("the reference decision diverged") })
	b.Run("eval", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := q.Eval(context.Background(), in, &EvalParams{OPA: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("check", func(b *testing.B) {
		b.ReportAllocs()
		j := CrossCheckJob{Route: "reference", Query: q, Build: built(in), Decision: d, Timeout: time.Second}
		for b.Loop() {
			c.check(j)
		}
	})
}

// TestSameDecisionIsDeepEqual: the cross-check's comparison answers as reflect.DeepEqual on
// every pair of decisions that differ in one field (nil against empty included), for every
// field of Decision: a field added to Decision and not to sameDecision fails here.
func TestSameDecisionIsDeepEqual(t *testing.T) {
	candidates := map[string][]any{
		"Allow":           {false, true},
		"Status":          {0, 403, 451},
		"Deny":            {[]string(nil), []string{}, []string{"a"}, []string{"b"}, []string{"a", "b"}},
		"RateLimit":       {(*state.RateLimit)(nil), &state.RateLimit{}, &state.RateLimit{Key: "k", Limit: 10, Per: time.Minute}, &state.RateLimit{Key: "k", Limit: 10, Per: time.Minute, Burst: 2}},
		"Dedupe":          {(*state.Dedupe)(nil), &state.Dedupe{}, &state.Dedupe{Key: "d", TTL: time.Hour}, &state.Dedupe{Key: "d", TTL: time.Minute}},
		"UpstreamHeaders": {[]Header(nil), []Header{}, []Header{{"X-A", "1"}}, []Header{{"X-A", "2"}}, []Header{{"X-B", "1"}}},
		"Labels": {map[string]any(nil), map[string]any{}, map[string]any{"a": "b"}, map[string]any{"a": json.Number("1")},
			map[string]any{"a": []any{"x", true, nil}}, map[string]any{"a": []any{"x", false, nil}}, map[string]any{"a": map[string]any{"b": "c"}}},
	}
	typ := reflect.TypeFor[Decision]()
	if typ.NumField() != len(candidates) {
		t.Fatalf("Decision has %d fields, the test covers %d", typ.NumField(), len(candidates))
	}
	base := Decision{Allow: true, Status: 403, Deny: []string{"a"}, RateLimit: &state.RateLimit{Key: "k", Limit: 10, Per: time.Minute},
		Dedupe: &state.Dedupe{Key: "d", TTL: time.Hour}, UpstreamHeaders: []Header{{"X-A", "1"}}, Labels: map[string]any{"a": "b"}}
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		vals, ok := candidates[name]
		if !ok {
			t.Fatalf("no candidates for Decision.%s", name)
		}
		for _, x := range vals {
			for _, y := range vals {
				a, b := base, base
				reflect.ValueOf(&a).Elem().Field(i).Set(reflect.ValueOf(x))
				reflect.ValueOf(&b).Elem().Field(i).Set(reflect.ValueOf(y))
				if got, want := sameDecision(&a, &b), reflect.DeepEqual(a, b); got != want {
					t.Errorf("%s: %#v against %#v: sameDecision %t, reflect.DeepEqual %t", name, x, y, got, want)
				}
			}
		}
	}
	// Two decisions built apart, equal in every field, and the zero decisions.
	c := base
	c.Deny, c.Labels = []string{"a"}, map[string]any{"a": "b"}
	if !sameDecision(&base, &c) || !sameDecision(&Decision{}, &Decision{}) {
		t.Error("equal decisions compared unequal")
	}
}

// TestCrossCheckYieldsTheProcessor: on one processor, a goroutine that sleeps 200 µs at a
// time while a long topdown evaluation runs wakes about on time when the evaluation is a
// cross-check (which yields every crossCheckQuantum), and late by milliseconds when it is the
// same evaluation without yielding: Go lets it hold the processor until it has run 10 ms.
// The second is the control that shows the first could fail.
func TestCrossCheckYieldsTheProcessor(t *testing.T) {
	q := slowQuery(t, 300000)
	in := doc(requestValue("POST", "/", nil, ""))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))

	// lateness sleeps 200 µs at a time until done is closed and returns how late it woke,
	// sorted.
	lateness := func(done <-chan struct{}) []time.Duration {
		var late []time.Duration
		for {
			select {
			case <-done:
				slices.Sort(late)
				return late
			default:
			}
			t0 := time.Now()
			time.Sleep(200 * time.Microsecond)
			late = append(late, time.Since(t0)-200*time.Microsecond)
		}
	}
	median := func(late []time.Duration) time.Duration {
		if len(late) < 5 {
			t.Fatalf("%d wake-ups during the evaluation; the test needs a longer one", len(late))
		}
		return late[len(late)/2]
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := q.Eval(context.Background(), in, &EvalParams{OPA: true}); err != nil {
			t.Error(err)
		}
	}()
	held := median(lateness(done))

	c := NewCrossCheck(1, slog.New(slog.NewTextHandler(io.Discard, nil)), func(string) { t.Error("the decision diverged") })
	checked := make(chan struct{})
	go func() {
		defer close(checked)
		for c.Checked() == 0 {
			time.Sleep(time.Millisecond)
		}
	}()
	if !c.Offer(CrossCheckJob{Route: "r", Query: q, Build: built(in), Decision: Decision{Allow: true, Status: 403}, Timeout: time.Minute}) {
		t.Fatal("the job was dropped")
	}
	yielded := median(lateness(checked))

	t.Logf("median lateness of a 200 µs sleep: %v beside a plain evaluation, %v beside the cross-check", held, yielded)
	if held < 2*time.Millisecond {
		t.Fatalf("the control: a plain evaluation delayed the sleeper by %v at the median; on one processor it should hold it for milliseconds", held)
	}
	if yielded > held/4 {
		t.Errorf("the cross-check delayed the sleeper by %v at the median, the plain evaluation by %v: it does not yield the processor", yielded, held)
	}
}

// firstEvent is a tracer that notes, at the evaluation's first event, whether a goroutine
// made runnable before the evaluation began had run by then.
type firstEvent struct {
	ran     *atomic.Bool
	seen    bool
	ranThen bool
}

func (f *firstEvent) Enabled() bool { return true }
func (f *firstEvent) Config() topdown.TraceConfig {
	return topdown.TraceConfig{}
}
func (f *firstEvent) TraceEvent(topdown.Event) {
	if !f.seen {
		f.seen, f.ranThen = true, f.ran.Load()
	}
}

// TestYieldStartsByYielding: with Yield, the evaluation gives up the processor before its
// first expression, so what its caller ran before it (the cross-check's building of the
// document) and the evaluation's first quantum are two slices, not one. On one processor a
// goroutine made runnable just before has run by the first trace event with Yield, and has
// not without it. Go's scheduler gives no promise for a single trial (one schedule in 61
// takes the global queue first, where runtime.Gosched put the evaluation itself), so the
// test counts trials: nearly all with Yield, nearly none without.
func TestYieldStartsByYielding(t *testing.T) {
	q := postOnlyQuery(t)
	in := doc(requestValue("POST", "/", nil, ""))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const trials = 40
	for _, yield := range []time.Duration{0, time.Hour} {
		ranFirst := 0
		for range trials {
			var ran atomic.Bool
			tr := &firstEvent{ran: &ran}
			go ran.Store(true)
			if _, err := q.Eval(context.Background(), in, &EvalParams{Tracer: tr, Yield: yield}); err != nil {
				t.Fatal(err)
			}
			if !tr.seen {
				t.Fatal("the tracer saw no event")
			}
			if tr.ranThen {
				ranFirst++
			}
		}
		if yield > 0 && ranFirst < trials*3/4 || yield == 0 && ranFirst > trials/4 {
			t.Errorf("Yield %v: in %d of %d trials the goroutine made runnable before the evaluation had run by its first event; want nearly all with Yield, nearly none without", yield, ranFirst, trials)
		}
	}
}

// TestCrossCheckOutOfTimeIsNoAnswer: a check whose topdown evaluation runs out of its time
// (a request that makes the policy slow, the cross-check's budget being at most a second) is
// no answer, never a divergence: counted as one, the route would be demoted to topdown by
// whoever sends such requests. The evaluation's own deadline poll may see the time pass
// before the context's timer fires, so each is tried many times.
func TestCrossCheckOutOfTimeIsNoAnswer(t *testing.T) {
	q := slowQuery(t, 3000000)
	in := doc(requestValue("POST", "/", nil, ""))
	var diverged atomic.Int32
	c := NewCrossCheck(64, slog.New(slog.NewTextHandler(io.Discard, nil)), func(string) { diverged.Add(1) })
	const n = 30
	for i := range n {
		for !c.Offer(CrossCheckJob{Route: "r", Query: q, Build: built(in), Decision: Decision{Allow: true}, Timeout: time.Duration(1+i%5) * time.Millisecond, Demote: true}) {
			time.Sleep(time.Millisecond)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.Checked() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if c.Checked() < n {
		t.Fatalf("%d of %d checks ran", c.Checked(), n)
	}
	if d := diverged.Load(); d != 0 || q.demoted.Load() != nil {
		t.Fatalf("%d of %d checks that ran out of time counted as divergences (demoted: %v)", d, n, q.demoted.Load() != nil)
	}
}

// slowQuery prepares package p, whose allow counts the multiples of 7 up to n: an
// evaluation of milliseconds to seconds, without input.
func slowQuery(t *testing.T, n int) *Query {
	t.Helper()
	src := map[string]string{"p.rego": fmt.Sprintf("package p\nallow if count([x | some x in numbers.range(1, %d); x %% 7 == 0]) > 0\n", n)}
	set, err := LoadModules(context.Background(), src, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := set.Prepare(context.Background(), "p")
	if err != nil {
		t.Fatal(err)
	}
	return q
}
