package filter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Host owns the wazero runtimes that run filters and one compilation cache
// shared by all of them. It is safe for concurrent use.
//
// A wazero runtime fixes the memory page limit and whether calls can be
// interrupted for every module in it, so Host keeps one runtime per distinct
// (memory cap, interruptible or not) pair among the loaded filters, created on
// first use. A filter without a deadline, and one whose guest provably ends
// every call within a bound (boundedGuest), run in a runtime without
// interrupts: their calls cost no interrupt checks and no watcher goroutine.
// The runtimes share the compilation cache, so a module is compiled once per
// wazero build no matter how many runtimes or reloads use it.
//
// Above that cache, the Host shares one compiled module among all Filters
// loaded from the same bytes into the same runtime, and keeps the last 8
// modules it loaded after their Filters closed, so reloading an unchanged
// or recently seen module (a config change, a rollback) neither compiles
// nor decodes it again.
type Host struct {
	cache wazero.CompilationCache

	mu       sync.Mutex
	runtimes map[runtimeKey]*hostRuntime
	compiled map[compiledKey]*compiledModule // held by a Filter or recent
	recent   []*compiledModule               // most recently loaded first, ≤ compiledCacheSize
	counters map[string]*counters            // by filter name: they outlive a replaced Filter
	closed   bool

	// For tests: wazero CompileModule calls, and closes of their modules.
	compiles, closedModules atomic.Uint64
}

type runtimeKey struct {
	pages     uint32
	interrupt bool // WithCloseOnContextDone: compiled with interrupt checks, a watcher per call
}

type hostRuntime struct {
	rt wazero.Runtime
}

// NewHost creates a Host. With a non-empty cacheDir compiled modules persist
// there (created if missing) and later processes skip compilation; with ""
// the cache lives in memory for the Host's lifetime. Runtimes are created by
// Load, so ctx is only kept for API symmetry.
func NewHost(_ context.Context, cacheDir string) (*Host, error) {
	var cache wazero.CompilationCache
	if cacheDir == "" {
		cache = wazero.NewCompilationCache()
	} else {
		c, err := wazero.NewCompilationCacheWithDir(cacheDir)
		if err != nil {
			return nil, fmt.Errorf("filter: compilation cache %q: %w", cacheDir, err)
		}
		cache = c
	}
	return &Host{
		cache:    cache,
		runtimes: make(map[runtimeKey]*hostRuntime),
		compiled: make(map[compiledKey]*compiledModule),
		counters: make(map[string]*counters),
	}, nil
}

// countersFor returns the cumulative counters of the filters named name.
func (h *Host) countersFor(name string) *counters {
	h.mu.Lock()
	defer h.mu.Unlock()
	c, ok := h.counters[name]
	if !ok {
		c = &counters{}
		h.counters[name] = c
	}
	return c
}

// Close closes every compiled module and runtime, and with them every
// filter and instance the Host created, then the compilation cache. Later calls on those filters
// fail with ErrClosed or a closed-module error. Close is idempotent.
func (h *Host) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	rts := h.runtimes
	h.runtimes = nil
	h.closeCompiledLocked(ctx)
	h.mu.Unlock()

	var errs []error
	for _, r := range rts {
		if err := r.rt.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := h.cache.Close(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("filter: close host: %w", err)
	}
	return nil
}

// runtime returns the runtime for key, creating it with the WASI and host
// modules on first use.
func (h *Host) runtime(ctx context.Context, key runtimeKey) (*hostRuntime, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	if r, ok := h.runtimes[key]; ok {
		return r, nil
	}
	cfg := wazero.NewRuntimeConfig().
		WithCompilationCache(h.cache).
		WithMemoryLimitPages(key.pages).
		WithCloseOnContextDone(key.interrupt)
	rt := wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("filter: instantiate wasi: %w", err)
	}
	if err := instantiateHostModules(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, err
	}
	r := &hostRuntime{rt: rt}
	h.runtimes[key] = r
	return r, nil
}
