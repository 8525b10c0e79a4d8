package filter

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
	"github.com/valyala/fasthttp"
)

// Exchange is what one request's filter calls see. It must not outlive the
// fasthttp handler that owns Req and Resp; the instance drops its pointer
// when each call returns.
type Exchange struct {
	// Req is the request that will be forwarded; guests change it in place
	// (method, URI, headers, body). The server keeps its own copy of the
	// request as received for the policy and signatures.
	Req *fasthttp.Request
	// Resp is the response: written by a guest that ends the request
	// (next=false), or the upstream's response during HandleResponse.
	// Headers a guest sets on it before next belong to the final response,
	// so the server merges the upstream response into Resp (MergeResponse)
	// rather than resetting it.
	Resp *fasthttp.Response
	// Route is the route name returned by hookwall.get_route.
	Route string
	// RemoteAddr ("ip:port") is returned by get_source_addr: the connection's peer, which is
	// a proxy's address behind a proxy (the client's IP as judged from X-Forwarded-For is
	// the policy's, not a filter's). When it is empty, Source is
	// formatted on the first get_source_addr of the request: most filters never ask, and
	// formatting costs two allocations a request.
	RemoteAddr string
	Source     net.Addr
	// Scheme is "http" or "https". The http-wasm ABI has no call that
	// returns it (get_uri is path and query, get_protocol_version comes
	// from Req); it is carried for the server and future host functions.
	Scheme string
	// SetLabel receives hookwall.set_label calls; nil drops them.
	SetLabel func(key, value string)
	// RespChanged is set when a guest changed Resp (a header, the body or the status): the
	// server must then merge the upstream's answer into Resp, even when no instance is held
	// for a response phase.
	RespChanged bool
}

// Instance is one guest instance, held by one request from Acquire to
// Release. It is not safe for concurrent use.
type Instance struct {
	f          *Filter
	mod        api.Module
	handleReq  export
	handleResp export // fn is nil when the filter has no response phase
	stack      [2]uint64

	// Per-request state, reset by HandleRequest.
	ex           *Exchange
	baseFeatures uint32 // enabled from the start function, for all requests
	features     uint32
	afterNext    bool
	reqCtx       uint32
	reqReadOff   int
	respReadOff  int
	reqWritten   bool
	respWritten  bool
	labels       int
	labelTexts   [keptLabels][2]string // the strings of the last labels set (labelText)
	addedHeaders int                   // bytes of header names and values the guest set or added this request

	// logLeft is the output the guest may still have logged in this call (logCallLimit).
	logLeft int

	cctx      callContext
	uses      int
	idleSince time.Time // when it was last released to the idle list
	calledAt  time.Time // when its last call with a deadline started; zero if none did
	broken    bool
	renewals  int // function handles renewed after a long call (call), for tests
	scratch   []byte
	stdout    boundedBuffer
	stderr    boundedBuffer
}

// HandleRequest calls the guest's handle_request with ex. next reports
// whether the request goes on; when false the guest has written the
// response into ex.Resp (status 200 unless it set one). On error the
// instance is spent (Release closes it) and ex.Req/ex.Resp may hold partial
// changes: the server must answer with its own 5xx, or, for on_error =
// "skip", forward a copy of the request it took before the call.
func (i *Instance) HandleRequest(ctx context.Context, ex *Exchange) (next bool, err error) {
	i.uses++
	i.features = i.baseFeatures
	i.afterNext = false
	i.reqCtx = 0
	i.reqReadOff, i.respReadOff = 0, 0
	i.reqWritten, i.respWritten = false, false
	i.labels = 0
	i.addedHeaders = 0
	if err := i.call(ctx, ex, &i.handleReq, i.stack[:1]); err != nil {
		return false, err
	}
	ctxNext := i.stack[0]
	next = uint32(ctxNext) != 0
	i.reqCtx = uint32(ctxNext >> 32)
	return next, nil
}

// HandleResponse calls the guest's handle_response after the upstream
// answered (or failed: isError) for a request whose HandleRequest returned
// next=true, with the same instance. It is a no-op when the guest does not
// export handle_response. The guest may read and, with buffer_response,
// change ex.Resp. On error the instance is spent (but see the package doc for a
// context that ended before the call) and ex.Resp may hold partial
// changes over the upstream's answer: the server must replace it with its own
// 5xx, or, for on_error = "skip", send a copy it took before the call.
func (i *Instance) HandleResponse(ctx context.Context, ex *Exchange, isError bool) error {
	if i.handleResp.fn == nil {
		return nil
	}
	i.afterNext = true
	i.reqReadOff, i.respReadOff = 0, 0
	i.respWritten = false
	i.stack[0] = uint64(i.reqCtx)
	i.stack[1] = 0
	if isError {
		i.stack[1] = 1
	}
	return i.call(ctx, ex, &i.handleResp, i.stack[:2])
}

// Filter returns the filter the instance belongs to.
func (i *Instance) Filter() *Filter { return i.f }

// Release returns the instance to its pool, or closes it when it failed or
// reached MaxUses. Call it exactly once; the instance must not be used
// after.
func (i *Instance) Release() {
	i.ex = nil
	i.f.release(i)
}

// close closes the guest module and the call timer.
func (i *Instance) close(ctx context.Context) error {
	i.cctx.stop()
	return i.mod.Close(ctx)
}

// export is one of the guest's exported functions, with the handle its calls go through.
type export struct {
	fn   api.Function
	name string
}

// renewAfter is how long a call may run before its function's handle is renewed (see call).
// A call of the tiny guest takes about 2 µs, one of a standard-Go guest 10–50 µs. wazero
// grows a call stack by doubling it, so a call that leaves a stack of S bytes behind first
// filled S/2 of it: on the development VM a thin recursion without a deadline filled about
// 5 MiB a millisecond at best, so a call shorter than this leaves at most about 1 MiB of stack
// with its handle (and a call that grew one of megabytes ran for milliseconds). That is a
// small part of the default memory cap, which each pooled instance may fill anyway.
const renewAfter = 100 * time.Microsecond

// call runs fn under the filter's deadline with ex visible to the host
// functions.
//
// wazero keeps a guest's call stack in host memory, owned by the function handle the call
// went through, and never shrinks it: a guest that recursed deeply once would have its pooled
// instance hold tens of MiB that the memory cap does not count. So a call that ran longer
// than renewAfter, which is how long it takes to grow a large stack, gets a fresh handle for
// its function afterwards, and the old one, with its stack, becomes garbage. Short calls, the
// common case, keep their handle and allocate nothing; a bounded guest's calls are not timed
// at all (Filter.bounded).
func (i *Instance) call(ctx context.Context, ex *Exchange, fn *export, stack []uint64) error {
	if i.broken {
		return i.f.fail(KindTrap, errors.New("instance already failed"))
	}
	if err := ctx.Err(); err != nil {
		// Not the guest's fault: the instance stays usable.
		return i.f.fail(KindTimeout, err)
	}
	i.f.stats.calls.Add(1)
	i.ex = ex
	i.logLeft = logCallLimit
	c := &i.cctx
	c.caller = ctx
	var err error
	var start time.Time // when the call started, for a guest whose stack may grow; zero otherwise
	if i.f.timeout > 0 {
		// One clock reading: the deadline, the timer's delay, and the idle list's clock
		// when the instance is released after this call. Under a caller's deadline (a
		// request's, which carries a monotonic reading) it is of the monotonic clock alone,
		// the time left before that deadline: about half of time.Now's cost.
		var now time.Time
		cd, ok := ctx.Deadline()
		if ok {
			now = cd.Add(-time.Until(cd))
		} else {
			now = time.Now()
		}
		i.calledAt = now
		if !i.f.bounded {
			start = now
		}
		d, in := now.Add(i.f.timeout), i.f.timeout
		if ok && cd.Before(d) {
			d, in = cd, cd.Sub(now)
		}
		c.arm(d, in)
		err = fn.fn.CallWithStack(c, stack)
		if c.disarm() && err == nil {
			// The deadline fired as the guest returned: the answer stands, but Done is
			// closed for good (and wazero may have closed the module), so a reuse would
			// fail its next call as a timeout that was not its own.
			i.broken = true
		}
	} else {
		if !i.f.bounded {
			start = time.Now()
		}
		err = fn.fn.CallWithStack(c, stack)
	}
	c.caller = nil
	i.ex = nil
	i.flushOutput(ctx)
	if err != nil {
		i.broken = true
		return i.f.fail(i.classify(ctx, err), err)
	}
	if !start.IsZero() && !i.broken && time.Since(start) > renewAfter {
		i.renew(fn)
	}
	return nil
}

// renew replaces fn's handle with a fresh one from the module, whose call stack is wazero's
// initial 10 KiB: the old handle, and the stack it grew, are left to the garbage collector.
func (i *Instance) renew(fn *export) {
	if f := i.mod.ExportedFunction(fn.name); f != nil {
		fn.fn = f
		i.renewals++
	}
}

// callContext is the context.Context of an instance's guest calls: one per
// instance, reused by every call, so a call allocates no context, timer or
// channel of its own.
//
// wazero (WithCloseOnContextDone) watches Done for the length of each call
// and closes the module when it is closed; a bounded guest, compiled without
// interrupts, is stopped by its next host call instead (callingInstance). The
// per-instance timer closes it at the deadline. Done is closed at most once: a
// call that times out breaks the instance, which then makes no further calls.
//
// The timer is armed lazily, as lazyconn arms a connection's deadlines: resetting
// a runtime timer for every call costs more than the rest of a tiny call's
// overhead. A call re-arms it only when none is armed or the call's deadline
// comes before the armed one; otherwise the timer fires early, and the fire
// re-arms it for the rest of the active call's deadline (or, with no call
// active, leaves it unarmed). So a call is stopped at its own deadline, never
// at an earlier call's, and an idle instance's timer fires at most once more.
//
// Only the deadline of the caller's context is honoured during the call
// (it can shorten the filter's); its cancellation is checked before each
// call, and a call lasts at most the filter's timeout anyway. This also
// keeps a fasthttp.RequestCtx, whose Done is the server's shutdown, from
// costing a goroutine per call. Values come from the caller's context, so
// log handlers see request-scoped values.
type callContext struct {
	inst   *Instance
	caller context.Context // set only during a call, on the calling goroutine

	done  chan struct{}
	timer *time.Timer

	mu       sync.Mutex
	active   bool
	deadline time.Time
	// armedFor is the instant the timer is armed for; zero when it is not armed (never
	// armed, or fired). A timer already due is still armed: its fire is on the way, and
	// will see the active call's deadline.
	armedFor time.Time
	// resets counts the timer's arming, so that tests can tell a lazy timer from one
	// reset by every call.
	resets int

	// expired is set once, when the deadline fires: Err is context.DeadlineExceeded from
	// then on. An atomic, so that every host function checks it without the lock.
	expired atomic.Bool
}

func (c *callContext) init(inst *Instance) {
	c.inst = inst
	c.done = make(chan struct{})
	if inst.f.timeout > 0 {
		c.timer = time.AfterFunc(time.Hour, c.fire)
		c.timer.Stop()
	}
}

// arm starts the deadline of a call: deadline, which is in from now. It leaves an armed
// timer alone unless deadline comes before it: the fire then re-arms for the rest.
func (c *callContext) arm(deadline time.Time, in time.Duration) {
	c.mu.Lock()
	c.active, c.deadline = true, deadline
	if c.armedFor.IsZero() || deadline.Before(c.armedFor) {
		// Under the lock, so that a fire on the way cannot clear armedFor between the
		// reset and its record. Reset does not wait for a running fire.
		c.armedFor = deadline
		c.resets++
		c.timer.Reset(in)
	}
	c.mu.Unlock()
}

// disarm ends the deadline of a call and reports whether it fired. The timer stays
// armed: the next call, likely soon and with a later deadline, keeps it.
func (c *callContext) disarm() (fired bool) {
	c.mu.Lock()
	c.active = false
	fired = c.expired.Load()
	c.mu.Unlock()
	return fired
}

// fire runs on the timer's goroutine. The timer may have been armed for an earlier
// call's deadline, before the active call's: it then re-arms for the rest of the active
// call's. A fire with no call active leaves the timer unarmed, for the next call to arm.
func (c *callContext) fire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armedFor = time.Time{}
	if !c.active || c.expired.Load() {
		return
	}
	if rest := time.Until(c.deadline); rest > 0 {
		c.armedFor = c.deadline
		c.resets++
		c.timer.Reset(rest)
		return
	}
	c.expired.Store(true)
	close(c.done)
}

// stop releases the timer when the instance closes (no call is active then, so no fire
// re-arms it).
func (c *callContext) stop() {
	if c.timer != nil {
		c.timer.Stop()
	}
}

func (c *callContext) Deadline() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deadline, c.active
}

func (c *callContext) Done() <-chan struct{} { return c.done }

func (c *callContext) Err() error {
	if c.expired.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *callContext) Value(key any) any {
	if _, ok := key.(instanceKey); ok { // a type check: comparing the interfaces costs a call
		return c.inst
	}
	if caller := c.caller; caller != nil {
		return caller.Value(key)
	}
	return nil
}

// classify maps a failed call to an error kind.
func (i *Instance) classify(ctx context.Context, err error) ErrorKind {
	if timedOut(err, i.cctx.expired.Load()) {
		return KindTimeout
	}
	var abi *abiError
	if errors.As(err, &abi) {
		return KindABI
	}
	if ctx.Err() != nil {
		return KindTimeout
	}
	if stackOverflow(err) {
		// Recursion too deep for wazero's call stack, which lives in host memory: the
		// guest's memory has nothing to do with it, even when it is full.
		return KindTrap
	}
	// A memory.grow past the cap does not trap: it returns -1 to the guest, whose allocator
	// then gives up its own way (unreachable, an out-of-bounds access, a Go guest's exit).
	// So a trap is taken for the guest running out of memory when its memory is at the cap.
	if mem := i.mod.Memory(); mem != nil {
		// Size overflows to 0 at 65536 pages; Grow(0) reports pages.
		if pages, ok := mem.Grow(0); ok && uint64(pages)*pageSize >= i.f.memLimit {
			return KindOOM
		}
	}
	return KindTrap
}

// wazeroStackOverflow is the text of wazero's stack overflow trap.
const wazeroStackOverflow = "stack overflow"

// stackOverflow reports whether err is wazero's stack overflow trap. wazero does not export
// the error value, so it is found by its text in err's chain: the trap itself, or its wrap
// with the wasm stack trace ("wasm error: stack overflow\n…"). A guest cannot make an error
// of that text: what it fails with is a trap, an exit code or a host function's abiError.
func stackOverflow(err error) bool {
	for ; err != nil; err = errors.Unwrap(err) {
		if err.Error() == wazeroStackOverflow {
			return true
		}
	}
	return false
}

// timedOut reports whether wazero closed the module because the call's deadline passed:
// err is the exit wazero closes it with when the call's context ends, and expired says that
// the deadline did fire. A guest may exit with the same code itself
// (proc_exit(0xefffffff)), within its deadline: that is its own exit, not a timeout.
func timedOut(err error, expired bool) bool {
	if !expired {
		return false
	}
	var exit *sys.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	code := exit.ExitCode()
	return code == sys.ExitCodeDeadlineExceeded || code == sys.ExitCodeContextCanceled
}

// flushOutput logs what the guest wrote to stdout (Debug) and stderr (Warn)
// during the last call, within the log budgets, then empties the buffers.
func (i *Instance) flushOutput(ctx context.Context) {
	i.flushStream(ctx, &i.stdout, slog.LevelDebug, "guest stdout")
	i.flushStream(ctx, &i.stderr, slog.LevelWarn, "guest stderr")
}

func (i *Instance) flushStream(ctx context.Context, b *boundedBuffer, level slog.Level, msg string) {
	if len(b.buf) == 0 {
		return
	}
	defer b.reset()
	if !i.f.logger.Enabled(ctx, level) {
		return
	}
	i.f.dropLog(ctx, b.dropped)
	if i.admitLog(ctx, len(b.buf)) {
		i.f.logger.Log(ctx, level, msg, "output", string(b.buf), "dropped", b.dropped)
	}
}

// admitLog reports whether n more bytes of guest output may be logged now: within what is
// left of this call's budget and of the filter's budget for this second. Refused bytes are
// counted as dropped.
func (i *Instance) admitLog(ctx context.Context, n int) bool {
	if n <= i.logLeft && i.f.logs.take(n) {
		i.logLeft -= n
		return true
	}
	i.f.dropLog(ctx, n)
	return false
}

// dropLog counts n bytes of guest output that were not logged, and says so in the log at
// most once a second per filter.
func (f *Filter) dropLog(ctx context.Context, n int) {
	if n <= 0 {
		return
	}
	f.stats.logDropped.Add(uint64(n))
	if f.logs.report() {
		f.logger.Log(ctx, slog.LevelWarn, "guest log output dropped: over its budget", "per_call_bytes", logCallLimit, "per_second_bytes", logSecondLimit)
	}
}

// logBudget is a filter's guest-output budget per second, shared by its instances. It is
// safe for concurrent use.
type logBudget struct {
	mu       sync.Mutex
	second   int64 // unix second of used
	used     int
	reported int64 // unix second of the last "dropped" warning
}

// take reserves n bytes of this second's budget.
func (b *logBudget) take(n int) bool {
	now := time.Now().Unix()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.second != now {
		b.second, b.used = now, 0
	}
	if b.used+n > logSecondLimit {
		return false
	}
	b.used += n
	return true
}

// report reports whether no "dropped" warning was logged this second, and marks one.
func (b *logBudget) report() bool {
	now := time.Now().Unix()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.reported == now {
		return false
	}
	b.reported = now
	return true
}

// boundedBuffer keeps the first limit bytes written and counts the rest.
// Writes never fail, so a chatty guest is not broken by a full buffer.
type boundedBuffer struct {
	buf     []byte
	limit   int
	dropped int
}

func (b *boundedBuffer) Write(p []byte) (int, error) {
	room := b.limit - len(b.buf)
	if room >= len(p) {
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	if room > 0 {
		b.buf = append(b.buf, p[:room]...)
	}
	b.dropped += len(p) - max(room, 0)
	return len(p), nil
}

func (b *boundedBuffer) reset() {
	b.buf = b.buf[:0]
	b.dropped = 0
}
