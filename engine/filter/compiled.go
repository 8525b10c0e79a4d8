package filter

import (
	"context"
	"crypto/sha256"
	"fmt"

	"github.com/tetratelabs/wazero"
)

// compiledCacheSize bounds how many compiled modules a Host keeps after the
// last Filter using them closed. Eight covers a reload that keeps a
// module, a rollback to the previous version, and a few filters changing
// at once; a standard-Go guest's compiled module holds a few MiB.
const compiledCacheSize = 8

// compiledKey names a compiled module: the module bytes and the runtime it
// was compiled in. A wazero CompiledModule belongs to its runtime, and the
// runtime's memory cap is applied when the module is decoded.
type compiledKey struct {
	sum [sha256.Size]byte
	rt  runtimeKey
}

// compiledModule is one wazero.CompiledModule shared by every Filter of the
// Host loaded from the same bytes into the same runtime, with what
// checkModule found. All fields but key, mod and hasResponse are guarded by
// Host.mu.
type compiledModule struct {
	key         compiledKey
	mod         wazero.CompiledModule
	hasResponse bool

	refs   int  // Filters holding it (from Load until their compiled module is released)
	recent bool // in Host.recent
	closed bool // mod.Close was called, or the Host closed it
}

// acquireCompiled returns the compiled module for wasm in rt with one more
// reference, compiling and checking it only when the Host holds none for
// these bytes and runtime: wazero decodes and validates a module before it
// consults its own compilation cache, which for a standard-Go guest costs
// more than the rest of a reload. The caller releases the reference with
// releaseCompiled.
func (h *Host) acquireCompiled(ctx context.Context, rt *hostRuntime, key compiledKey, wasm []byte) (*compiledModule, error) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if c, ok := h.compiled[key]; ok {
		c.refs++
		evicted := h.touchLocked(c)
		h.mu.Unlock()
		if evicted != nil {
			h.closeModule(ctx, evicted)
		}
		return c, nil
	}
	h.mu.Unlock()

	// Compile without the lock: loads of other modules go on meanwhile.
	h.compiles.Add(1)
	mod, err := rt.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	hasResponse, err := checkModule(mod)
	if err == nil {
		// Tables live on the host's heap, outside the memory cap wazero enforces: checked
		// against the cap here, once per module and cap (key.rt.pages), before any instance
		// allocates them.
		err = checkTables(wasm, uint64(key.rt.pages)*pageSize)
	}
	if err != nil {
		h.closeModule(ctx, mod)
		return nil, err
	}
	// A handle_response that does nothing is never called: each guest call costs wazero a
	// goroutine, and this one could change nothing.
	hasResponse = hasResponse && !emptyExport(wasm, exportHandleResponse)

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		h.closeModule(ctx, mod)
		return nil, ErrClosed
	}
	if c, ok := h.compiled[key]; ok {
		// A concurrent Load of the same bytes won the race: share its module.
		c.refs++
		evicted := h.touchLocked(c)
		h.mu.Unlock()
		h.closeModule(ctx, mod)
		if evicted != nil {
			h.closeModule(ctx, evicted)
		}
		return c, nil
	}
	c := &compiledModule{key: key, mod: mod, hasResponse: hasResponse, refs: 1}
	h.compiled[key] = c
	evicted := h.touchLocked(c)
	h.mu.Unlock()
	if evicted != nil {
		h.closeModule(ctx, evicted)
	}
	return c, nil
}

// releaseCompiled drops one reference. The module is closed once no Filter
// holds it and it has left the recent list.
func (h *Host) releaseCompiled(ctx context.Context, c *compiledModule) {
	h.mu.Lock()
	c.refs--
	closeIt := h.dropIfUnusedLocked(c)
	h.mu.Unlock()
	if closeIt {
		h.closeModule(ctx, c.mod)
	}
}

// touchLocked moves c to the front of the recent list, adding it when
// missing. When that pushes an unused module out, it returns that module,
// already forgotten by the Host, for the caller to close after unlocking.
func (h *Host) touchLocked(c *compiledModule) (evicted wazero.CompiledModule) {
	if c.recent {
		for j, r := range h.recent {
			if r == c {
				copy(h.recent[1:j+1], h.recent[:j])
				h.recent[0] = c
				return nil
			}
		}
	}
	c.recent = true
	h.recent = append(h.recent, nil)
	copy(h.recent[1:], h.recent)
	h.recent[0] = c
	if len(h.recent) <= compiledCacheSize {
		return nil
	}
	last := h.recent[len(h.recent)-1]
	h.recent[len(h.recent)-1] = nil
	h.recent = h.recent[:len(h.recent)-1]
	last.recent = false
	if h.dropIfUnusedLocked(last) {
		return last.mod
	}
	return nil
}

// dropIfUnusedLocked forgets c when no Filter holds it and it is not
// recent, and reports whether the caller must close its module.
func (h *Host) dropIfUnusedLocked(c *compiledModule) bool {
	if c.refs > 0 || c.recent || c.closed {
		return false
	}
	c.closed = true
	if h.compiled[c.key] == c {
		delete(h.compiled, c.key)
	}
	return true
}

// closeCompiledLocked closes every compiled module the Host knows, whether
// or not a Filter still holds it; the Filters' later releases are no-ops.
func (h *Host) closeCompiledLocked(ctx context.Context) {
	for _, c := range h.compiled {
		if !c.closed {
			c.closed = true
			h.closeModule(ctx, c.mod)
		}
	}
	h.compiled = nil
	clear(h.recent)
	h.recent = nil
}

// closeModule closes a module compiled by acquireCompiled, once.
func (h *Host) closeModule(ctx context.Context, m wazero.CompiledModule) {
	h.closedModules.Add(1)
	_ = m.Close(ctx)
}
