package policy

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"slices"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Sample reports whether one decision is picked for the cross-check at rate (0..1): a
// draw from the runtime's per-thread generator, without a lock or an allocation.
func Sample(rate float64) bool {
	return rate > 0 && rand.Float64() < rate
}

// CrossCheckJob is one compiled decision to evaluate again with topdown.
type CrossCheckJob struct {
	Route      string
	DecisionID string
	Query      *Query
	// Build makes, on the worker, the whole input document the decision was made on
	// (input.request included), so a sampled request spends no time building or copying
	// it: it must read only data it owns (nothing the request reuses after it ends).
	Build    func() ast.Value
	Decision Decision // the compiled evaluator's, when Err is nil
	Err      error
	// Timeout bounds the topdown evaluation (the route's timeout).
	Timeout time.Duration
	// Demote hands the route's query to topdown when the answers differ (on_divergence =
	// "opa"); otherwise the difference is only logged and counted.
	Demote bool
}

// CrossCheck re-evaluates a sample of compiled decisions with topdown, off the request
// path: Offer queues a job on a bounded queue and never waits (a full queue drops the job),
// and a worker evaluates them one at a time. The worker exists while jobs keep coming: it
// ends once crossCheckLinger passed without one, so that under steady traffic one
// goroutine, its stack grown to topdown's depth once, evaluates them all (a goroutine per
// job grew a fresh stack by copying it several times, most of a check's CPU). A
// decision topdown answers differently (a different decision, or an error on one side
// only) is logged with both answers and the decision id, reported to Diverged, and, with
// Demote, moves the query to topdown. Safe for concurrent use.
type CrossCheck struct {
	queue    chan CrossCheckJob
	running  atomic.Bool
	log      *slog.Logger
	diverged func(route string)
	dropped  atomic.Uint64
	checked  atomic.Uint64
	skipped  atomic.Uint64 // samples over the ceiling (Admit)
	workers  atomic.Uint64 // workers started
	linger   time.Duration
	// The ceiling's token bucket as one word (GCRA): when, in nanoseconds since epoch, the
	// bucket is full again; it takes a compare-and-swap to admit and a load to refuse.
	epoch time.Time
	full  atomic.Int64
}

// crossCheckQuantum is the longest the worker holds the processor at a time in an
// evaluation, less than one request's work in the gateway: on one core the requests it
// shares the processor with wait about that long for it, not the whole check (100–200 µs
// for the benchmark's reference policy in a loaded gateway).
const crossCheckQuantum = 20 * time.Microsecond

// crossCheckLinger is how long a worker must have had no job before it ends. At the
// default sample of 1 % a gateway serving 100 requests a second or more keeps it.
const crossCheckLinger = 2 * time.Second

// NewCrossCheck returns a cross-check with a queue of n jobs. diverged, when not nil, is
// called once per divergence with the route's name (the metric).
func NewCrossCheck(n int, log *slog.Logger, diverged func(route string)) *CrossCheck {
	if log == nil {
		log = slog.Default()
	}
	return &CrossCheck{queue: make(chan CrossCheckJob, n), log: log, diverged: diverged, linger: crossCheckLinger, epoch: time.Now()}
}

// Admit takes a token from the ceiling of perSecond checks a second (0: no ceiling) for a
// sample taken at now (a reading the request already has: Admit reads no clock). The bucket
// holds a tenth of a second's tokens, at least one, and starts full: over any span of d, at
// most perSecond×d + perSecond/10 (at least 1) samples are admitted. A refused sample is
// counted (Skipped) and must not be offered. Without a lock; safe for concurrent use.
func (c *CrossCheck) Admit(now time.Time, perSecond int) bool {
	if perSecond <= 0 {
		return true
	}
	t := int64(now.Sub(c.epoch))
	every := max(int64(time.Second)/int64(perSecond), 1)
	depth := every * int64(max(perSecond/10, 1))
	for {
		full := c.full.Load()
		// A token is there when the bucket, after giving it, is still due full no later
		// than depth from now; a reading older than the last admitted one counts from it.
		next := max(full, t) + every
		if next-t > depth {
			c.skipped.Add(1)
			return false
		}
		if c.full.CompareAndSwap(full, next) {
			return true
		}
	}
}

// Offer queues j; false when the queue is full and j was dropped.
func (c *CrossCheck) Offer(j CrossCheckJob) bool {
	select {
	case c.queue <- j:
	default:
		c.dropped.Add(1)
		return false
	}
	if c.running.CompareAndSwap(false, true) {
		c.workers.Add(1)
		go c.work()
	}
	return true
}

// Checked, Dropped and Skipped count the jobs evaluated, the jobs a full queue dropped and
// the samples the ceiling refused (Admit).
func (c *CrossCheck) Checked() uint64 { return c.checked.Load() }
func (c *CrossCheck) Dropped() uint64 { return c.dropped.Load() }
func (c *CrossCheck) Skipped() uint64 { return c.skipped.Load() }

// work evaluates the queued jobs and ends once a whole c.linger passed without one (between
// one and two lingers after the last); a job queued as it ends starts another worker. The
// idle timer is not moved per job: when it fires after jobs came, it is set again.
func (c *CrossCheck) work() {
	idle := time.NewTimer(c.linger)
	defer idle.Stop()
	jobs := 0 // since the idle timer was set
	for {
		select {
		case j := <-c.queue:
			c.check(j)
			jobs++
			continue
		case <-idle.C:
		}
		if jobs > 0 {
			jobs = 0
			idle.Reset(c.linger)
			continue
		}
		c.running.Store(false)
		// A job offered after the last receive but before the flag was cleared found the
		// worker running and started none: take it here.
		if len(c.queue) == 0 || !c.running.CompareAndSwap(false, true) {
			return
		}
		idle.Reset(c.linger)
	}
}

// check evaluates one job with topdown and acts on a difference.
func (c *CrossCheck) check(j CrossCheckJob) {
	defer func() {
		// Nothing a policy does may take the gateway down from here.
		if x := recover(); x != nil {
			c.log.Error("cross-check: topdown evaluation panicked", "route", j.Route, "decision_id", j.DecisionID, "panic", fmt.Sprint(x))
		}
	}()
	if j.Timeout <= 0 {
		j.Timeout = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), j.Timeout)
	defer cancel()
	td, terr := j.Query.Eval(ctx, j.Build(), &EvalParams{OPA: true, Yield: crossCheckQuantum})
	c.checked.Add(1)
	if ctx.Err() != nil && terr != nil || topdown.IsCancel(terr) || topdown.IsCancel(j.Err) {
		// Either side ran out of time: no answer to compare. Not ctx.Err() alone: the
		// evaluation's deadline poll may see the time pass before the context's timer fires,
		// and a request that made topdown (with at most a second) outrun what the compiled
		// evaluator finished would demote its route on purpose.
		return
	}
	if (terr != nil) == (j.Err != nil) && (terr != nil || sameDecision(&td, &j.Decision)) {
		return
	}
	if c.diverged != nil {
		c.diverged(j.Route)
	}
	demoted := j.Demote && j.Query.demote(fmt.Sprintf("the compiled evaluator diverged from topdown on decision %s; topdown decides until the next reload", j.DecisionID))
	c.log.Error("compiled evaluator diverged from topdown", "route", j.Route, "policy", j.Query.Package(), "decision_id", j.DecisionID,
		"compiled", describeDecision(j.Decision, j.Err), "topdown", describeDecision(td, terr), "moved_to_topdown", demoted)
}

// sameDecision is reflect.DeepEqual(*a, *b), field by field: the typed fields compared
// directly, a nil slice or pointer unequal to a non-nil one as DeepEqual has it; the labels,
// values of any JSON type, with DeepEqual when either decision has any. DeepEqual on the
// whole decision walked every field by reflection, a few per cent of a check.
func sameDecision(a, b *Decision) bool {
	return a.Allow == b.Allow && a.Status == b.Status &&
		sameSlice(a.Deny, b.Deny) && sameSlice(a.UpstreamHeaders, b.UpstreamHeaders) &&
		samePointee(a.RateLimit, b.RateLimit) && samePointee(a.Dedupe, b.Dedupe) &&
		((a.Labels == nil && b.Labels == nil) || reflect.DeepEqual(a.Labels, b.Labels))
}

func sameSlice[T comparable](a, b []T) bool { return (a == nil) == (b == nil) && slices.Equal(a, b) }

func samePointee[T comparable](a, b *T) bool { return a == b || (a != nil && b != nil && *a == *b) }

// describeDecision renders a decision (or its error) for the process log: the verdict and
// which obligations it carries, not their values (labels, headers and keys may hold request
// data, which the decision log records under its own rules).
func describeDecision(d Decision, err error) string {
	if err != nil {
		return "error: " + RedactQuoted(err.Error()) // its quotes may hold the request's values
	}
	return fmt.Sprintf("allow=%t status=%d deny=%d rate_limit=%t dedupe=%t upstream_headers=%d labels=%d",
		d.Allow, d.Status, len(d.Deny), d.RateLimit != nil, d.Dedupe != nil, len(d.UpstreamHeaders), len(d.Labels))
}
