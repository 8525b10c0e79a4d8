package filter

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/hookwall/hookwall/engine/config"
)

const (
	// NoDeadline as Spec.Timeout runs the filter without a per-call deadline.
	//
	// The filter is compiled without wazero's interrupt checks, so tight guest
	// loops run 20–60× faster (a known wazero interpreter cost) and a call costs no timer
	// and no watcher goroutine. The price: nothing can stop a guest that
	// loops forever; it holds its request and its pool slot until the
	// process exits. Use it only for trusted, tested filters. The config
	// spells it timeout = "0".
	NoDeadline time.Duration = -1

	// instantiateTimeout bounds a start function (_start or _initialize);
	// standard-Go guests take a few milliseconds.
	instantiateTimeout = 5 * time.Second
	pageSize           = 65536
)

// Spec describes one filter. Load applies the defaults to zero fields.
type Spec struct {
	Name   string
	Module []byte // wasm bytes; Load hashes them and does not keep a reference
	Config []byte // returned by get_config; copied by Load
	// Timeout bounds each guest call: 0 means config.DefaultFilterTimeout,
	// NoDeadline means none (trusted guests only, see NoDeadline). It also
	// bounds the wait in Acquire (config.DefaultFilterTimeout for NoDeadline).
	Timeout time.Duration
	// Memory caps each instance's linear memory in bytes, rounded up to 64
	// KiB pages; 0 means config.DefaultFilterMemory. A module that declares more fails
	// at load, as does one whose tables could hold more entries than the cap has room
	// for at 8 bytes each (wazero keeps tables in host memory, outside the cap).
	Memory uint64
	// Pool is how many instances Load creates and the pool keeps warm; 0
	// means config.DefaultFilterPool() (2×GOMAXPROCS).
	Pool int
	// PoolMax bounds the instances: past Pool, Acquire creates more on
	// demand (a request that holds its instance across the upstream call
	// would otherwise wait), and those idle for IdleTimeout are closed
	// again. 0 means max(config.DefaultFilterPoolMax, Pool).
	PoolMax int
	// IdleTimeout is how long an instance above Pool may stay idle; 0 means
	// config.DefaultFilterIdleTimeout.
	IdleTimeout time.Duration
	// MaxUses recycles an instance after this many requests, because guest
	// globals persist between requests; 0 means config.DefaultFilterMaxUses.
	MaxUses int
	// Logger receives guest log calls and stdout/stderr; nil discards.
	Logger *slog.Logger
}

// withDefaults returns s with defaults applied, or an error naming the bad
// field. The defaults are the config's (config.DefaultFilter*): a Spec field
// left zero and a [[filter]] key left out mean the same.
func (s Spec) withDefaults() (Spec, error) {
	switch {
	case s.Name == "":
		return s, errors.New("filter: spec has no name")
	case len(s.Module) == 0:
		return s, fmt.Errorf("filter/%s: empty module", s.Name)
	case s.Timeout < 0 && s.Timeout != NoDeadline:
		return s, fmt.Errorf("filter/%s: timeout %v is negative", s.Name, s.Timeout)
	case s.Pool < 0:
		return s, fmt.Errorf("filter/%s: pool %d is negative", s.Name, s.Pool)
	case s.PoolMax < 0 || (s.PoolMax > 0 && s.PoolMax < s.Pool):
		return s, fmt.Errorf("filter/%s: pool max %d is below the pool %d", s.Name, s.PoolMax, s.Pool)
	case s.MaxUses < 0:
		return s, fmt.Errorf("filter/%s: max uses %d is negative", s.Name, s.MaxUses)
	}
	if s.Timeout == 0 {
		s.Timeout = config.DefaultFilterTimeout
	}
	if s.Memory == 0 {
		s.Memory = config.DefaultFilterMemory
	}
	if s.Pool == 0 {
		s.Pool = config.DefaultFilterPool()
	}
	if s.PoolMax == 0 {
		s.PoolMax = max(config.DefaultFilterPoolMax, s.Pool)
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = config.DefaultFilterIdleTimeout
	}
	if s.MaxUses == 0 {
		s.MaxUses = config.DefaultFilterMaxUses
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	return s, nil
}

// pages converts the memory cap to wasm pages, rounding up, within 1..65536.
func (s Spec) pages() uint32 {
	p := (s.Memory + pageSize - 1) / pageSize
	switch {
	case p < 1:
		return 1
	case p > 65536:
		return 65536
	}
	return uint32(p)
}

// Hash returns the hex SHA-256 of everything that makes a loaded filter
// what it is (name, module, config and limits, after defaults). Two specs
// with the same hash load identical filters, so a reload can keep the old
// Filter instead of loading the same one again. The Logger is not part of
// it. An invalid spec hashes to "".
func (s Spec) Hash() string {
	d, err := s.withDefaults()
	if err != nil {
		return ""
	}
	return d.hash(sha256.Sum256(d.Module))
}

// hash is Hash for s, whose defaults are applied, given its module's SHA-256
// (Load needs that digest for the compiled-module cache too, and hashing a
// standard-Go guest costs milliseconds).
func (s Spec) hash(module [sha256.Size]byte) string {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	num := func(v int64) {
		binary.BigEndian.PutUint64(n[:], uint64(v))
		h.Write(n[:])
	}
	field([]byte("hookwall-filter-v2")) // v2: the module enters as its SHA-256
	field([]byte(s.Name))
	field(module[:])
	field(s.Config)
	num(int64(s.Timeout))
	num(int64(s.pages()))
	num(int64(s.Pool))
	num(int64(s.PoolMax))
	num(int64(s.IdleTimeout))
	num(int64(s.MaxUses))
	return hex.EncodeToString(h.Sum(nil))
}

// Filter is a loaded filter: a compiled module and a bounded pool of
// instances. It is immutable and safe for concurrent use.
type Filter struct {
	name        string
	hash        string
	config      []byte
	timeout     time.Duration // 0: no deadline
	poolWait    time.Duration
	memLimit    uint64 // bytes
	maxUses     int
	pool        int // kept warm
	poolMax     int // the bound: cap(sem)
	idleTimeout time.Duration
	hasResponse bool
	// bounded: the guest ends every call within boundedSteps instructions (boundedGuest), so
	// its call stack cannot outgrow what those few push, and its calls need no renewal of
	// their function handles (Instance.call).
	bounded bool
	logger  *slog.Logger

	host     *Host
	rt       *hostRuntime
	shared   *compiledModule       // one reference, released after the last instance
	compiled wazero.CompiledModule // shared.mod
	modCfg   wazero.ModuleConfig

	// sem holds one token per instance in use; its capacity is the bound.
	sem chan struct{}

	mu        sync.Mutex
	idle      []*Instance // oldest first: Acquire takes the newest, the reaper the oldest
	live      int         // idle + in use + being created
	closed    atomic.Bool
	refilling atomic.Bool
	reaping   atomic.Bool
	closeOnce sync.Once

	// stats are the Host's counters for this filter's name: they add up across the Filters
	// that replace one another (a reload with a new module), as Prometheus counters must.
	stats *counters
	// logs is this filter's guest-output budget for the current second.
	logs logBudget
}

// counters are a filter name's cumulative counters.
type counters struct {
	created, discarded, recycled, shrunk, waits, calls atomic.Uint64
	trap, timeout, oom, pool, abi                      atomic.Uint64
	logDropped                                         atomic.Uint64 // bytes
}

// Stats is a snapshot of a filter's pool and of the counters of its name (which add up over
// every Filter of that name the Host loaded).
type Stats struct {
	Pool  int // instances kept warm
	Max   int // bound on instances
	Live  int // instances that exist (idle, in use or being created)
	Idle  int
	InUse int // pool tokens held: by requests, or by a background refill

	Created   uint64 // instances instantiated, including Load's
	Discarded uint64 // closed after a trap, timeout or error
	Recycled  uint64 // closed after MaxUses requests
	Shrunk    uint64 // closed after IdleTimeout idle above Pool
	Waits     uint64 // Acquire calls that found the pool full and waited
	Calls     uint64 // guest calls (handle_request and handle_response)
	Errors    ErrorCounts
	// LogDropped counts bytes of guest output (log messages, stdout, stderr) that were not
	// logged: over the per-call or per-second budget, or cut from an over-long message.
	LogDropped uint64
}

// ErrorCounts counts failed calls by Kind.
type ErrorCounts struct {
	Trap, Timeout, OOM, Pool, ABI uint64
}

// Load compiles spec.Module (or reuses the Host's compiled module for the
// same bytes, see Host, or wazero's compilation cache), checks it, instantiates the first instance (a start function that traps
// fails here) and then fills the pool to spec.Pool instances.
//
// A guest must export memory "memory" and handle_request() -> i64; it may
// export handle_response(i32, i32). It may import only http_handler,
// hookwall and wasi_snapshot_preview1 functions and must not import memory.
// Start functions _start and _initialize run, in that order, when exported.
func (h *Host) Load(ctx context.Context, spec Spec) (*Filter, error) {
	s, err := spec.withDefaults()
	if err != nil {
		return nil, err
	}
	deadline := s.Timeout != NoDeadline
	// A guest whose every call ends within boundedSteps keeps its deadline (the call's timer,
	// checked by every host function) without wazero's interrupts.
	bounded := boundedGuest(s.Module)
	key := runtimeKey{pages: s.pages(), interrupt: deadline && !bounded}
	rt, err := h.runtime(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("filter/%s: %w", s.Name, err)
	}
	sum := sha256.Sum256(s.Module)
	compiled, err := h.acquireCompiled(ctx, rt, compiledKey{sum: sum, rt: key}, s.Module)
	if err != nil {
		return nil, fmt.Errorf("filter/%s: %w", s.Name, err)
	}

	f := &Filter{
		name:        s.Name,
		hash:        s.hash(sum),
		config:      bytes.Clone(s.Config),
		memLimit:    uint64(s.pages()) * pageSize,
		maxUses:     s.MaxUses,
		pool:        s.Pool,
		poolMax:     s.PoolMax,
		idleTimeout: s.IdleTimeout,
		stats:       h.countersFor(s.Name),
		hasResponse: compiled.hasResponse,
		bounded:     bounded,
		logger:      s.Logger.With("filter", s.Name),
		host:        h,
		rt:          rt,
		shared:      compiled,
		compiled:    compiled.mod,
		sem:         make(chan struct{}, s.PoolMax),
		idle:        make([]*Instance, 0, s.Pool),
	}
	if deadline {
		f.timeout, f.poolWait = s.Timeout, s.Timeout
	} else {
		f.poolWait = config.DefaultFilterTimeout
	}
	// No mounts, env, args or sockets: wazero gives none unless asked.
	// Clocks are real so guests can check timestamps; randomness is real so
	// guests cannot be predicted. The anonymous name lets many instances of
	// one module coexist in the runtime.
	f.modCfg = wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions("_start", "_initialize").
		WithRandSource(rand.Reader).
		WithSysWalltime().
		WithSysNanotime()

	for range s.Pool {
		f.live++
		inst, err := f.newInstance(ctx)
		if err != nil {
			f.live--
			_ = f.Close(ctx)
			return nil, err
		}
		f.idle = append(f.idle, inst)
	}
	return f, nil
}

// checkModule validates the exports and imports of a compiled guest and
// reports whether it exports handle_response.
func checkModule(m wazero.CompiledModule) (hasResponse bool, err error) {
	exports := m.ExportedFunctions()
	hr, ok := exports[exportHandleRequest]
	if !ok {
		return false, fmt.Errorf("guest does not export %s", exportHandleRequest)
	}
	if !sig(hr, nil, []api.ValueType{i64}) {
		return false, fmt.Errorf("guest exports %s with the wrong signature, want () -> (i64)", exportHandleRequest)
	}
	if hs, ok := exports[exportHandleResponse]; ok {
		if !sig(hs, []api.ValueType{i32, i32}, nil) {
			return false, fmt.Errorf("guest exports %s with the wrong signature, want (i32, i32) -> ()", exportHandleResponse)
		}
		hasResponse = true
	}
	if _, ok := m.ExportedMemories()[exportMemory]; !ok {
		return false, fmt.Errorf("guest does not export memory %q", exportMemory)
	}
	if len(m.ImportedMemories()) > 0 {
		return false, errors.New("guest imports memory; it must define its own")
	}
	for _, fn := range m.ImportedFunctions() {
		mod, name, _ := fn.Import()
		switch mod {
		case moduleHTTPHandler, moduleHookwall, moduleWASI:
		default:
			return false, fmt.Errorf("guest imports %s.%s: unknown module %q", mod, name, mod)
		}
	}
	return hasResponse, nil
}

func sig(fn api.FunctionDefinition, params, results []api.ValueType) bool {
	return bytes.Equal(fn.ParamTypes(), params) && bytes.Equal(fn.ResultTypes(), results)
}

// Name returns the filter's name.
func (f *Filter) Name() string { return f.name }

// Hash returns Spec.Hash of the spec the filter was loaded from.
func (f *Filter) Hash() string { return f.hash }

// HasResponsePhase reports whether the guest exports a handle_response that
// does something (one whose body is empty is never called). When it does
// not, HandleResponse is a no-op and the server may release the instance as
// soon as HandleRequest returns.
func (f *Filter) HasResponsePhase() bool { return f.hasResponse }

// Stats returns a snapshot of the pool and counters.
func (f *Filter) Stats() Stats {
	f.mu.Lock()
	live, idle := f.live, len(f.idle)
	f.mu.Unlock()
	return Stats{
		Pool:       f.pool,
		Max:        f.poolMax,
		Live:       live,
		Idle:       idle,
		InUse:      len(f.sem),
		Created:    f.stats.created.Load(),
		Discarded:  f.stats.discarded.Load(),
		Recycled:   f.stats.recycled.Load(),
		Shrunk:     f.stats.shrunk.Load(),
		Waits:      f.stats.waits.Load(),
		Calls:      f.stats.calls.Load(),
		LogDropped: f.stats.logDropped.Load(),
		Errors: ErrorCounts{
			Trap:    f.stats.trap.Load(),
			Timeout: f.stats.timeout.Load(),
			OOM:     f.stats.oom.Load(),
			Pool:    f.stats.pool.Load(),
			ABI:     f.stats.abi.Load(),
		},
	}
}

// Close stops the filter: idle instances are closed now, instances in use
// when they are released, and the filter's hold on its compiled module
// after the last instance (other Filters of the same module keep it).
// It waits for no one and is idempotent. Acquire fails with ErrClosed after.
func (f *Filter) Close(ctx context.Context) error {
	if !f.closed.CompareAndSwap(false, true) {
		return nil
	}
	f.mu.Lock()
	idle := f.idle
	f.idle = nil
	f.live -= len(idle)
	f.mu.Unlock()
	var errs []error
	for _, inst := range idle {
		if err := inst.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	f.closeCompiledIfDone(ctx)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("filter/%s: close: %w", f.name, err)
	}
	return nil
}

// closeCompiledIfDone releases the filter's reference to its compiled
// module once the filter is closed and no instance exists or is being
// created from it. The Host closes the module when no other Filter holds it
// and it has left the Host's recent list.
func (f *Filter) closeCompiledIfDone(ctx context.Context) {
	if !f.closed.Load() {
		return
	}
	f.mu.Lock()
	done := f.live == 0
	f.mu.Unlock()
	if done {
		f.closeOnce.Do(func() { f.host.releaseCompiled(ctx, f.shared) })
	}
}

// Acquire takes an idle instance, or creates one while the pool is below
// its bound. When all are in use it waits up to the filter's timeout, then
// fails with KindPool (ErrPoolExhausted); ctx ends the wait early.
func (f *Filter) Acquire(ctx context.Context) (*Instance, error) {
	if f.closed.Load() {
		return nil, f.poolError(ErrClosed)
	}
	select {
	case f.sem <- struct{}{}:
	default:
		f.stats.waits.Add(1)
		t := time.NewTimer(f.poolWait)
		select {
		case f.sem <- struct{}{}:
			t.Stop()
		case <-t.C:
			return nil, f.poolError(ErrPoolExhausted)
		case <-ctx.Done():
			t.Stop()
			return nil, f.poolError(ctx.Err())
		}
	}
	f.mu.Lock()
	if f.closed.Load() {
		f.mu.Unlock()
		<-f.sem
		return nil, f.poolError(ErrClosed)
	}
	if n := len(f.idle); n > 0 {
		inst := f.idle[n-1]
		f.idle[n-1] = nil
		f.idle = f.idle[:n-1]
		f.mu.Unlock()
		return inst, nil
	}
	f.live++
	f.mu.Unlock()
	inst, err := f.newInstance(ctx)
	if err != nil {
		f.mu.Lock()
		f.live--
		f.mu.Unlock()
		<-f.sem
		f.closeCompiledIfDone(context.WithoutCancel(ctx))
		return nil, err
	}
	return inst, nil
}

func (f *Filter) poolError(err error) error {
	f.stats.pool.Add(1)
	return &Error{Filter: f.name, Kind: KindPool, Err: err}
}

// newInstance instantiates the module and runs its start functions. The
// caller has reserved the slot in f.live.
func (f *Filter) newInstance(ctx context.Context) (*Instance, error) {
	inst := &Instance{f: f, scratch: make([]byte, 0, 256), idleSince: time.Now(), logLeft: logCallLimit}
	inst.cctx.init(inst)
	inst.stdout.limit, inst.stderr.limit = outputLimit, outputLimit
	cfg := f.modCfg.WithStdout(&inst.stdout).WithStderr(&inst.stderr)

	ictx := context.WithValue(ctx, instanceKey{}, inst)
	if f.timeout > 0 {
		var cancel context.CancelFunc
		ictx, cancel = context.WithTimeout(ictx, instantiateTimeout)
		defer cancel()
	}
	mod, err := f.rt.rt.InstantiateModule(ictx, f.compiled, cfg)
	said := guestMessage(inst.stderr.buf)
	inst.flushOutput(ctx)
	if err != nil {
		inst.cctx.stop()
		if mod != nil {
			_ = mod.Close(ctx)
		}
		// A timeout only when the start functions' deadline passed or the caller's context
		// ended: a guest may exit with wazero's deadline code itself.
		kind := KindTrap
		if ictx.Err() != nil {
			kind = KindTimeout
		}
		if said != "" {
			// A guest that refuses its config says why on stderr and then traps: its own words
			// are the error, the trap's stack trace is noise to whoever wrote the config.
			return nil, f.fail(kind, &guestError{msg: said, err: err})
		}
		return nil, f.fail(kind, fmt.Errorf("instantiate: %w", err))
	}
	inst.mod = mod
	inst.handleReq.fn = mod.ExportedFunction(exportHandleRequest)
	inst.handleReq.name = exportHandleRequest
	if f.hasResponse {
		inst.handleResp.fn = mod.ExportedFunction(exportHandleResponse)
		inst.handleResp.name = exportHandleResponse
	}
	if inst.handleReq.fn == nil {
		// _start exited the module (proc_exit): it is a command, not a
		// reactor or a TinyGo-style guest that returns from main.
		inst.close(ctx)
		return nil, f.fail(KindTrap, errors.New("instantiate: the start function exited the module"))
	}
	f.stats.created.Add(1)
	return inst, nil
}

func (f *Filter) fail(kind ErrorKind, err error) *Error {
	switch kind {
	case KindTrap:
		f.stats.trap.Add(1)
	case KindTimeout:
		f.stats.timeout.Add(1)
	case KindOOM:
		f.stats.oom.Add(1)
	case KindABI:
		f.stats.abi.Add(1)
	case KindPool:
		f.stats.pool.Add(1)
	}
	return &Error{Filter: f.name, Kind: kind, Err: err}
}

// release puts inst back or closes it. See Instance.Release.
func (f *Filter) release(inst *Instance) {
	reason := ""
	switch {
	case inst.broken:
		reason = "discard"
	case inst.uses >= f.maxUses:
		reason = "recycle"
	}
	if reason == "" {
		// The start of this use's last call stands for the release (earlier by the call, or
		// by the request's upstream call for an instance held across it): the idle clock
		// counts tens of seconds, and the call read the clock already.
		inst.idleSince, inst.calledAt = inst.calledAt, time.Time{}
		if inst.idleSince.IsZero() {
			inst.idleSince = time.Now()
		}
		f.mu.Lock()
		if !f.closed.Load() {
			f.idle = append(f.idle, inst)
			// A refill that found every token busy stopped short; resume
			// it now that one is free.
			short, over := f.live < f.pool, f.live > f.pool
			f.mu.Unlock()
			<-f.sem
			if short {
				f.startRefill()
			}
			if over {
				f.startReaper()
			}
			return
		}
		f.mu.Unlock()
	}
	ctx := context.Background()
	_ = inst.close(ctx)
	switch reason {
	case "discard":
		f.stats.discarded.Add(1)
	case "recycle":
		f.stats.recycled.Add(1)
	}
	f.mu.Lock()
	f.live--
	f.mu.Unlock()
	<-f.sem
	if f.closed.Load() {
		f.closeCompiledIfDone(ctx)
		return
	}
	f.startRefill()
}

// startReaper closes, in the background, the instances above Pool that stay idle for
// IdleTimeout, oldest first, so a burst's instances do not hold memory forever. At most one
// reaper runs per filter; it ends when the pool is back to Pool or the filter closes.
func (f *Filter) startReaper() {
	if !f.reaping.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer f.reaping.Store(false)
		t := time.NewTimer(f.idleTimeout)
		defer t.Stop()
		for range t.C {
			var stale []*Instance
			f.mu.Lock()
			now := time.Now()
			next := f.idleTimeout
			for len(f.idle) > 0 && f.live > f.pool {
				age := now.Sub(f.idle[0].idleSince)
				if age < f.idleTimeout {
					next = f.idleTimeout - age
					break
				}
				stale = append(stale, f.idle[0])
				f.idle[0] = nil
				f.idle = f.idle[1:]
				f.live--
			}
			// Counted with live's decrement, under the lock, so Stats never sees a shrunk pool
			// with fewer closed than it lost.
			f.stats.shrunk.Add(uint64(len(stale)))
			done := f.closed.Load() || f.live <= f.pool
			f.mu.Unlock()
			for _, inst := range stale {
				_ = inst.close(context.Background())
			}
			if done {
				f.closeCompiledIfDone(context.Background())
				return
			}
			t.Reset(next)
		}
	}()
}

// startRefill tops the pool back up in the background after an instance
// was closed, so the next request does not pay for instantiation. At most
// one refill runs per filter. Like Acquire, it creates an instance only
// while holding a pool token, which keeps Live within the bound; when no
// token is free every instance is busy and Acquire creates lazily instead.
func (f *Filter) startRefill() {
	if !f.refilling.CompareAndSwap(false, true) {
		return
	}
	go func() {
		ctx := context.Background()
		defer f.refilling.Store(false)
		defer f.closeCompiledIfDone(ctx)
		for {
			select {
			case f.sem <- struct{}{}:
			default:
				return
			}
			f.mu.Lock()
			if f.closed.Load() || f.live >= f.pool {
				f.mu.Unlock()
				<-f.sem
				return
			}
			f.live++
			f.mu.Unlock()
			inst, err := f.newInstance(ctx)
			f.mu.Lock()
			if err != nil {
				f.live--
				f.mu.Unlock()
				<-f.sem
				f.logger.Warn("filter refill failed", "err", err)
				return
			}
			if f.closed.Load() {
				f.live--
				f.mu.Unlock()
				<-f.sem
				_ = inst.close(ctx)
				return
			}
			f.idle = append(f.idle, inst)
			f.mu.Unlock()
			<-f.sem
		}
	}()
}
