package delivery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// DefaultRetry is the schedule of a route without retry: the delays before the second,
// third, … attempt (the first is immediate). After the last, a delivery is dead.
var defaultRetry = [...]time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// DefaultRetry returns a copy of the default schedule.
func DefaultRetry() []time.Duration { return append([]time.Duration(nil), defaultRetry[:]...) }

// MaxRetryAfter caps the wait an upstream's Retry-After asks for.
const MaxRetryAfter = time.Hour

// Header names set on every attempt.
const (
	HeaderID      = "Hookwall-Delivery-Id"
	HeaderAttempt = "Hookwall-Attempt"
)

// Target is where one route's deliveries go.
type Target struct {
	Client   *fasthttp.HostClient
	Scheme   string // upstream scheme
	Host     string // upstream host[:port]
	BasePath string // the upstream URL's path, prefixed to the record's URI
	Timeout  time.Duration
	// Retry is the route's schedule (delays before each retry); nil means DefaultRetry.
	Retry []time.Duration
	// MaxInFlight bounds this dispatcher's attempts to the route at once; 0: no bound.
	MaxInFlight int
	// MaxRate bounds this dispatcher's attempts to the route per second (a token bucket
	// holding one second's worth); 0: no bound.
	MaxRate float64
	// SignKey, when set, signs each attempt with the Standard Webhooks scheme.
	SignKey []byte
}

// Options configure a Dispatcher. Store and Target are required.
type Options struct {
	Store Store
	// Target resolves a route's destination (0: its upstream; see Record.Dest) to where it
	// is delivered; release is called once the attempt is done with it. ok false (the
	// route or the destination is not configured) holds the destination's deliveries:
	// they stay pending in the store, no attempt made or counted, until Target resolves
	// the destination again (asked every holdRecheck), so none is sent elsewhere or lost.
	Target func(route string, dest int) (t Target, release func(), ok bool)
	// Fanout returns the URLs of a route's destinations beside its upstream: Enqueue
	// stores one record per destination, all or none, each with the DestinationID of its
	// URL. Nil means none.
	Fanout func(route string) []string
	// Owner names this dispatcher's leases; default a random id.
	Owner string
	// Lease is how long a claimed delivery is this dispatcher's alone: a dispatcher that
	// died is taken over after it. It must exceed the longest attempt. Default 1m.
	Lease time.Duration
	// Workers bounds the attempts in flight. Default 64.
	Workers int
	// Poll is how often the store is asked for due deliveries when no enqueue woke the
	// dispatcher. Default 250ms.
	Poll time.Duration
	// KeepDelivered and KeepDead: finished deliveries are pruned after them; 0 keeps them.
	KeepDelivered, KeepDead time.Duration
	// Final is called after a delivery is delivered or dead (the decision-log line).
	Final func(r *Record, res Result)
	// Attempted is called after each attempt with its outcome.
	Attempted func(route string, outcome AttemptOutcome)
	// Refused is called, instead of Final and Attempted, after a claimed delivery whose
	// stored row does not decode (Record.Unreadable: cause errors.Is ErrCorrupt) is made
	// dead, never attempted: as Sealed calls its dead, so one function can log and count
	// both kinds of refusal. Nil: the Dispatcher logs a warning, and calls Attempted (dead)
	// and Final. (A Sealed store refuses such a delivery itself, through its dead.)
	Refused func(r *Record, res Result, cause error)
	// Held is called after a claimed delivery is held because this gateway cannot open it
	// (cause errors.Is ErrSealedNoKeys: it is sealed and the store is not wrapped in Sealed;
	// or errors.As a *MissingKeyError: Record.Held): it is not attempted nor made dead, but
	// left pending under the claim's lease, and claimed again once the lease expires (here,
	// or by a gateway sharing the store that holds the key). Nil: the hold is only logged.
	Held   func(r *Record, cause error)
	Logger *slog.Logger
	// Ordered returns the routes delivered one at a time in arrival order.
	Ordered func() []string
	// BreakerCooldown is how long a route's circuit breaker stays open before it lets one
	// probe attempt through. Default 30s.
	BreakerCooldown time.Duration
}

// Dispatcher delivers what a Store holds. Create with NewDispatcher; Run, then Shutdown.
type Dispatcher struct {
	o    Options
	wake chan struct{}
	sem  chan struct{}

	gates gates // per route: max_in_flight, max_rate, circuit breaker

	// more: the last claim took all it asked for, so more is likely due (Run's alone).
	more bool
	// gathering: Run waits for claimBatch free workers (gather); an attempt that ends
	// meanwhile wakes it only once there are enough.
	gathering atomic.Bool

	// jobs hands claimed deliveries to the workers Run starts (sem bounds them to Workers).
	jobs chan job

	// held: the destinations Target did not resolve, and when to ask it again (Run's
	// alone). Claims skip them: their deliveries wait in the store, untouched.
	held map[Destination]time.Time

	// inflight: the deliveries in an attempt, each with the end of its lease. A claim
	// never takes one back while its attempt is being recorded.
	mu       sync.Mutex
	inflight map[string]time.Time
	wg       sync.WaitGroup
	stopped  chan struct{}
}

// holdRecheck is how often Target is asked again for a held destination: a reload that
// configures it again has its deliveries go out within about this long.
const holdRecheck = time.Second

// job is one claimed delivery for a worker: its target and what releases it.
type job struct {
	r       *Record
	t       Target
	release func()
}

// NewDispatcher applies o's defaults; nothing runs until Run.
func NewDispatcher(o Options) *Dispatcher {
	if o.Owner == "" {
		o.Owner = NewID()
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	if o.Workers <= 0 {
		o.Workers = 64
	}
	if o.Poll <= 0 {
		o.Poll = 250 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.BreakerCooldown <= 0 {
		o.BreakerCooldown = 30 * time.Second
	}
	return &Dispatcher{gates: gates{m: map[Destination]*gate{}, cooldown: o.BreakerCooldown}, o: o, wake: make(chan struct{}, 1), sem: make(chan struct{}, o.Workers),
		jobs: make(chan job, o.Workers), held: map[Destination]time.Time{}, inflight: map[string]time.Time{}, stopped: make(chan struct{})}
}

// Store returns the dispatcher's store.
func (d *Dispatcher) Store() Store { return d.o.Store }

// Enqueue stores r durably (see Store.Enqueue), with one copy per destination of its
// route (the n-th: ID "<r.ID>-<n>", Dest the DestinationID of its URL), and wakes the
// workers.
func (d *Dispatcher) Enqueue(ctx context.Context, r *Record) error {
	rs := []*Record{r}
	if d.o.Fanout != nil {
		for i, url := range d.o.Fanout(r.Route) {
			c := *r
			c.ID, c.Dest = r.ID+"-"+strconv.Itoa(i+1), DestinationID(url)
			rs = append(rs, &c)
		}
	}
	if err := d.o.Store.Enqueue(ctx, rs...); err != nil {
		return err
	}
	d.Wake()
	return nil
}

// Wake makes the dispatcher look for due deliveries now (after an enqueue or a replay).
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run claims and delivers until ctx ends. Attempts in flight then go on: Shutdown waits
// for them.
func (d *Dispatcher) Run(ctx context.Context) {
	defer close(d.stopped)
	// Workers that live as long as Run, not a goroutine per attempt: an attempt's stack
	// (the HTTP client, the decision-log line) is grown once per worker, not copied anew
	// for every delivery. Closing jobs ends them once the attempts handed over are done.
	for range d.o.Workers {
		go d.work()
	}
	defer close(d.jobs)
	poll := time.NewTimer(0)
	defer poll.Stop()
	lastPrune := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-poll.C:
		}
		if now := time.Now(); now.Sub(lastPrune) > time.Minute {
			lastPrune = now
			d.prune(ctx, now)
		}
		for d.claimOnce(ctx) {
		}
		poll.Reset(d.o.Poll)
	}
}

// claimOnce claims as many deliveries as there are free workers and starts them; it
// reports whether it should be called again at once (it filled every free worker).
func (d *Dispatcher) claimOnce(ctx context.Context) bool {
	free := d.o.Workers - len(d.sem)
	if free <= 0 {
		// Every worker is busy: wait for one, or for the end.
		select {
		case d.sem <- struct{}{}:
			<-d.sem
			return ctx.Err() == nil
		case <-ctx.Done():
			return false
		}
	}
	if d.more && free < d.claimBatch() {
		free = d.gather(ctx)
	}
	now := time.Now()
	routes := Routes{Skip: d.heldSkip(d.gates.closed(now), now), Busy: d.busy(now)}
	if d.o.Ordered != nil {
		routes.Ordered = d.o.Ordered()
	}
	rs, err := d.o.Store.Claim(ctx, d.o.Owner, now, d.o.Lease, free, routes)
	if err != nil {
		if ctx.Err() == nil {
			d.o.Logger.Warn("delivery store: claim failed", "err", err)
		}
		return false
	}
	var back []string
	var held []*Record
	for _, r := range rs {
		if r.Unreadable != nil {
			if !d.refuse(ctx, r, now) {
				back = append(back, r.ID)
			}
			continue
		}
		if r.Held != nil || isSealed(r) {
			// Sealed, and nothing opened it: what would go out is the ciphertext. It keeps
			// its lease, unattempted, and is claimed again when that expires: once the
			// key is back (or by a gateway that has it) it is delivered.
			held = append(held, r)
			continue
		}
		dest := Destination{r.Route, r.Dest}
		t, release, ok := d.o.Target(r.Route, r.Dest)
		if !ok {
			// The route or the destination is not configured (a reload removed it): the
			// delivery goes nowhere, no attempt is spent, and the next claims skip its
			// destination until it is configured again.
			d.hold(dest, r.ID, now)
			back = append(back, r.ID)
			continue
		}
		if !d.gates.admit(dest, &t, now) {
			// The route is at max_in_flight or max_rate, or its breaker is open: give the
			// delivery back untouched; the next claims skip the route until it opens.
			release()
			back = append(back, r.ID)
			continue
		}
		d.sem <- struct{}{}
		d.mu.Lock()
		d.inflight[r.ID] = r.Lease
		d.mu.Unlock()
		d.wg.Add(1)
		d.jobs <- job{r: r, t: t, release: release}
	}
	if len(held) > 0 {
		d.holdSealed(held)
	}
	if len(back) > 0 {
		if err := d.o.Store.Release(ctx, d.o.Owner, back); err != nil && ctx.Err() == nil {
			d.o.Logger.Warn("delivery store: release failed", "err", err)
		}
	}
	d.more = len(rs) == free
	return d.more && len(back) == 0
}

// busy returns the deliveries in an attempt whose lease has ended by now (their result is
// still being recorded): the claim at now must not take them back, and start a second
// attempt beside the first. Nil, without allocating, when there are none.
func (d *Dispatcher) busy(now time.Time) []string {
	var ids []string
	d.mu.Lock()
	for id, until := range d.inflight {
		if !until.After(now) {
			ids = append(ids, id)
		}
	}
	d.mu.Unlock()
	return ids
}

// refuse makes r, claimed at now, dead without an attempt: its stored row does not decode
// (r.Unreadable), so what it would send is lost, and one such row must not stop the others.
// It reports false when the store did not record it (r is to be released: a later claim
// refuses it again).
func (d *Dispatcher) refuse(ctx context.Context, r *Record, now time.Time) bool {
	cause := r.Unreadable
	res := Result{Attempt: Attempt{N: r.Attempts + 1, At: now, Error: cause.Error()}, State: StateDead, Lease: r.Lease}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if err := d.o.Store.Finish(fctx, r.ID, d.o.Owner, res); err != nil {
		if !errors.Is(err, ErrLeaseLost) {
			d.o.Logger.Error("delivery store: refusing a delivery whose stored row does not decode failed", "delivery_id", r.ID, "route", r.Route, "err", err)
			return false
		}
		return true // another worker owns it now, and refuses it
	}
	r.State, r.Attempts, r.LastError, r.UpdatedAt = StateDead, res.Attempt.N, res.Attempt.Error, now
	if d.o.Refused != nil {
		d.o.Refused(r, res, cause)
		return true
	}
	d.o.Logger.Warn("delivery refused: its stored row does not decode, so it is never sent; purge it", "delivery_id", r.ID, "route", r.Route, "reason", "corrupt", "err", cause)
	if d.o.Attempted != nil {
		d.o.Attempted(r.Route, AttemptDead)
	}
	if d.o.Final != nil {
		d.o.Final(r, res)
	}
	return true
}

// holdSealed reports the sealed deliveries rs a claim holds, leased and unattempted: one
// warning for the claim, and Options.Held for each.
func (d *Dispatcher) holdSealed(rs []*Record) {
	var first error
	for _, r := range rs {
		cause := r.Held
		if cause == nil {
			cause = fmt.Errorf("delivery: %s: %w (sealed with key %q): held in the store, not sent; put that key back in [delivery] encryption_keys and restart the gateway to deliver it", r.ID, ErrSealedNoKeys, r.Headers[0].Value)
		}
		if first == nil {
			first = cause
		}
		if d.o.Held != nil {
			d.o.Held(r, cause)
		}
	}
	d.o.Logger.Warn("delivery: sealed deliveries held, not sent: this gateway has no key to open them; each is claimed again when its lease expires",
		"held", len(rs), "delivery_id", rs[0].ID, "route", rs[0].Route, "reason", HeldReason(first), "lease", d.o.Lease, "err", first)
}

// HeldReason is the reason a delivery was held for (Options.Held's cause): "sealed_no_key"
// (sealed, and the gateway has no keys) or "missing_key" (sealed with a key it lacks).
func HeldReason(cause error) string {
	if errors.Is(cause, ErrSealedNoKeys) {
		return "sealed_no_key"
	}
	return "missing_key"
}

// hold makes claims skip dest, whose delivery id Target did not resolve at now.
func (d *Dispatcher) hold(dest Destination, id string, now time.Time) {
	if _, ok := d.held[dest]; !ok {
		d.o.Logger.Warn("delivery: the destination of pending deliveries is not configured (a reload removed it, or its route); they are held in the store, sent nowhere, until a reload configures it again",
			"route", dest.Route, "destination", dest.Dest, "delivery_id", id)
	}
	d.held[dest] = now.Add(holdRecheck)
}

// heldSkip appends the held destinations to skip, first releasing those Target resolves
// again (asked at most every holdRecheck).
func (d *Dispatcher) heldSkip(skip []Destination, now time.Time) []Destination {
	for dest, recheck := range d.held {
		if !now.Before(recheck) {
			if _, release, ok := d.o.Target(dest.Route, dest.Dest); ok {
				release()
				delete(d.held, dest)
				d.o.Logger.Info("delivery: a held destination is configured again; its deliveries go out", "route", dest.Route, "destination", dest.Dest)
				continue
			}
			d.held[dest] = now.Add(holdRecheck)
		}
		skip = append(skip, dest)
	}
	return skip
}

// work makes the attempts handed to it until jobs is closed. Its request and response are
// its own, reset after each attempt: their header buffers are kept from one attempt to the
// next, where a pooled pair is lost at every garbage collection.
func (d *Dispatcher) work() {
	var w exchange
	defer w.endRecord()
	for j := range d.jobs {
		d.run(j, &w)
	}
}

// finishTimeout bounds recording an attempt (Store.Finish): a store that has not answered
// by then is given up on, and the lease's expiry has the delivery tried again.
const finishTimeout = 10 * time.Second

// exchange is a worker's request and response, and the context its attempts are recorded
// under.
type exchange struct {
	req  fasthttp.Request
	resp fasthttp.Response
	body io.LimitedReader // bounds the read of resp's body (discardBody)

	// record serves the worker's attempts until half of finishTimeout is left, so a Finish
	// is given between finishTimeout/2 and finishTimeout, without a context and a timer
	// made for every attempt.
	record       context.Context
	cancelRecord context.CancelFunc
	recordUntil  time.Time
}

// recordCtx returns the context to record an attempt under at now.
func (w *exchange) recordCtx(now time.Time) context.Context {
	if w.record == nil || now.After(w.recordUntil.Add(-finishTimeout/2)) {
		w.endRecord()
		w.recordUntil = now.Add(finishTimeout)
		w.record, w.cancelRecord = context.WithDeadline(context.Background(), w.recordUntil)
	}
	return w.record
}

// endRecord releases the record context's timer.
func (w *exchange) endRecord() {
	if w.cancelRecord != nil {
		w.cancelRecord()
	}
}

// run makes j's attempt, then frees its place among the workers and in its route's gate.
func (d *Dispatcher) run(j job, w *exchange) {
	defer d.wg.Done()
	failed := d.attempt(j.r, j.t, j.release, w)
	d.gates.done(Destination{j.r.Route, j.r.Dest}, failed, time.Now(), d.o.Logger)
	d.mu.Lock()
	delete(d.inflight, j.r.ID)
	d.mu.Unlock()
	<-d.sem
	// The route may have room again. A gathering Run needs no wake for each attempt that
	// ends, only for the one that frees its batch.
	if !d.gathering.Load() || d.o.Workers-len(d.sem) >= d.claimBatch() {
		d.Wake()
	}
}

// claimGather bounds how long a claim waits for more workers to free up while a backlog
// is being delivered.
const claimGather = 2 * time.Millisecond

// claimBatch is how many free workers a claim gathers while a backlog is being delivered:
// each claim is a read of the store, and claiming for one worker at a time, as each
// attempt ends, would cost one read per delivery.
func (d *Dispatcher) claimBatch() int { return max(1, d.o.Workers/8) }

// gather waits, at most claimGather, until claimBatch workers are free, and returns how
// many are.
func (d *Dispatcher) gather(ctx context.Context) int {
	d.gathering.Store(true)
	defer d.gathering.Store(false)
	t := time.NewTimer(claimGather)
	defer t.Stop()
	// The free workers are counted once gathering is set: an attempt that ended before saw
	// it unset and woke Run anyway.
	for {
		free := d.o.Workers - len(d.sem)
		if free >= d.claimBatch() {
			return free
		}
		select {
		case <-d.wake: // enough attempts ended, or an enqueue
		case <-t.C:
			return d.o.Workers - len(d.sem)
		case <-ctx.Done():
			return free
		}
	}
}

// Shutdown waits for Run to return (cancel its ctx first) and for the attempts in flight,
// until ctx ends; the leases of attempts still running then are released, so another
// worker (or the next start) takes them over without waiting for the lease to expire. It
// then returns ErrAttemptsCut, naming them: each is attempted again, and its upstream may
// already have it, so the stop was not clean.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	select {
	case <-d.stopped:
	case <-ctx.Done():
	}
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	d.mu.Lock()
	ids := make([]string, 0, len(d.inflight))
	for id := range d.inflight {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.o.Store.Release(rctx, d.o.Owner, ids); err != nil {
		return fmt.Errorf("delivery: release %d leases at shutdown: %w", len(ids), err)
	}
	if len(ids) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d, given back to be attempted again (their upstreams may have them already; the same delivery id and attempt number come again): %s",
		ErrAttemptsCut, len(ids), strings.Join(ids, ", "))
}

// ErrAttemptsCut is Shutdown's error when attempts were still running as its context ended.
var ErrAttemptsCut = errors.New("delivery: attempts still running when the drain ended")

func (d *Dispatcher) prune(ctx context.Context, now time.Time) {
	if d.o.KeepDelivered <= 0 && d.o.KeepDead <= 0 {
		return
	}
	// A zero keep is "forever": a cut-off before any record.
	cut := func(keep time.Duration) time.Time {
		if keep <= 0 {
			return time.Unix(0, 0)
		}
		return now.Add(-keep)
	}
	n, err := d.o.Store.Prune(ctx, cut(d.o.KeepDelivered), cut(d.o.KeepDead))
	if err != nil && ctx.Err() == nil {
		d.o.Logger.Warn("delivery store: prune failed", "err", err)
	} else if n > 0 {
		d.o.Logger.Debug("delivery store: pruned finished deliveries", "count", n)
	}
}

// attempt makes one attempt at r to t and records its result. It reports whether the
// upstream failed (no answer, 408, 429, 5xx), for the route's circuit breaker.
func (d *Dispatcher) attempt(r *Record, t Target, release func(), w *exchange) (failed bool) {
	n := r.Attempts + 1
	start := time.Now()
	// An attempt ends well within its lease, so the delivery never has two live owners.
	t.Timeout = min(t.Timeout, d.o.Lease/2)
	status, retryAfter, err := send(&t, r, n, w)
	release()
	res := Result{Attempt: Attempt{N: n, At: start, Status: status, Latency: time.Since(start)}, Lease: r.Lease}
	delivered := err == nil && status >= 200 && status < 300
	switch {
	case err != nil:
		res.Attempt.Error = err.Error()
	case !delivered:
		res.Attempt.Error = "upstream answered " + strconv.Itoa(status)
	}
	res.State = StateDelivered
	if !delivered {
		res.State = StateDead
		if retryable(status, err) {
			if delay, ok := nextDelay(t.Retry, n-r.Base); ok {
				res.State, res.NextAt = StatePending, time.Now().Add(max(delay, min(retryAfter, MaxRetryAfter)))
			}
		}
	}
	ctx := w.recordCtx(time.Now())
	outcome := AttemptDelivered
	switch res.State {
	case StatePending:
		outcome = AttemptRetry
	case StateDead:
		outcome = AttemptDead
	}
	if ferr := d.o.Store.Finish(ctx, r.ID, d.o.Owner, res); ferr != nil {
		if errors.Is(ferr, ErrLeaseLost) {
			outcome = AttemptLost
			d.o.Logger.Warn("delivery: lease lost during an attempt; another worker owns it", "delivery_id", r.ID, "route", r.Route)
		} else {
			// The lease expires and the delivery is tried again: at least once holds.
			d.o.Logger.Error("delivery store: recording an attempt failed", "delivery_id", r.ID, "route", r.Route, "err", ferr)
			return !delivered && retryable(status, err)
		}
	}
	if d.o.Attempted != nil {
		d.o.Attempted(r.Route, outcome)
	}
	failed = !delivered && retryable(status, err)
	if outcome == AttemptLost || res.State == StatePending {
		return failed
	}
	r.State, r.Attempts, r.LastStatus, r.LastError, r.UpdatedAt = res.State, n, status, res.Attempt.Error, time.Now()
	if d.o.Final != nil {
		d.o.Final(r, res)
	}
	return failed
}

// retryable: no answer (refused, reset, timeout), 408, 429 and 5xx are tried again; any
// other answer is final.
func retryable(status int, err error) bool {
	return err != nil || status == 408 || status == 429 || status >= 500
}

// nextDelay returns the wait before the next attempt after the k-th attempt of this round
// (k >= 1), with up to 20% jitter so that retries of one outage spread out; ok false when
// the schedule has run out.
func nextDelay(schedule []time.Duration, k int) (time.Duration, bool) {
	if schedule == nil {
		schedule = defaultRetry[:]
	}
	if k < 1 || k > len(schedule) {
		return 0, false
	}
	base := schedule[k-1]
	if base <= 0 {
		return 0, true
	}
	return base + rand.N(base/5+1), true
}

// send makes one HTTP attempt with w and returns the status and the Retry-After the
// upstream asked for, or the error when no answer came. It leaves w reset.
func send(t *Target, r *Record, n int, w *exchange) (status int, retryAfter time.Duration, err error) {
	req, resp := &w.req, &w.resp
	defer req.Reset()
	defer resp.Reset()
	req.Header.SetMethod(r.Method)
	req.SetRequestURI(t.BasePath + r.URI)
	for _, h := range r.Headers {
		req.Header.Add(h.Name, h.Value)
	}
	req.Header.SetHost(t.Host)
	req.UseHostHeader = true
	req.URI().SetScheme(t.Scheme)
	// Set replaces only the first copy of a name: every copy the client sent is deleted
	// first, so none of its own reaches the upstream beside the gateway's.
	req.Header.Del(HeaderID)
	req.Header.Del(HeaderAttempt)
	req.Header.Set(HeaderID, r.ID)
	req.Header.Set(HeaderAttempt, strconv.Itoa(n))
	req.Header.SetNoDefaultContentType(true) // none stored, none sent: fasthttp would invent one
	req.SetBodyRaw(r.Body)
	if t.SignKey != nil {
		signStandard(&req.Header, t.SignKey, r.ID, time.Now(), r.Body)
	}
	// The answer is its status line and headers: the client returns once it has them, and
	// the body is read only to keep the connection (discardBody). A 2xx whose body is large
	// or slow is delivered, not sent again to an upstream that took it.
	resp.StreamBody = true
	if err := t.Client.DoTimeout(req, resp, t.Timeout); err != nil {
		return 0, 0, err
	}
	status, retryAfter = resp.StatusCode(), parseRetryAfter(resp.Header.Peek("Retry-After"), time.Now())
	w.discardBody(t.Client.MaxResponseBodySize)
	return status, retryAfter, nil
}

// discardBody reads and drops what is left of w's streamed answer body, at most limit bytes
// (0: no bound), until the attempt's deadline (the connection's read deadline), then closes
// the stream: a body read to its end gives the connection back to the client's pool, one
// over limit, slower than the deadline or cut short closes it. Nothing of it changes the
// answer.
func (w *exchange) discardBody(limit int) {
	body := w.resp.BodyStream()
	if body == nil {
		return
	}
	w.body = io.LimitedReader{R: body, N: math.MaxInt64}
	if limit > 0 {
		w.body.N = int64(limit) + 1
	}
	_, _ = io.Copy(io.Discard, &w.body)
	w.body.R = nil
	_ = w.resp.CloseBodyStream()
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or unreadable.
func parseRetryAfter(v []byte, now time.Time) time.Duration {
	if len(v) == 0 {
		return 0
	}
	if secs, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(MaxRetryAfter/time.Second))) * time.Second
	}
	if at, err := fasthttp.ParseHTTPDate(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}
