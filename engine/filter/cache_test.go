package filter

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// withCustomSection returns mod with a custom section appended: different
// bytes (another cache key), the same behaviour.
func withCustomSection(mod []byte, payload string) []byte {
	const name = "hookwall-test"
	body := append([]byte{byte(len(name))}, name...)
	body = append(body, payload...)
	out := bytes.Clone(mod)
	out = append(out, 0, byte(len(body))) // id 0; sizes stay < 128 here
	return append(out, body...)
}

// cachedModules reports how many compiled modules the Host holds and how
// many Filters hold them in total.
func cachedModules(h *Host) (modules, refs int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.compiled {
		modules++
		refs += c.refs
	}
	return modules, refs
}

// TestCompiledModuleShared loads the same bytes twice: the second Load must
// not compile, and closing the first Filter must leave the second able to
// create instances from the shared module.
func TestCompiledModuleShared(t *testing.T) {
	h := newHost(t)
	mod := testdata(t, "unreachable.wasm")
	a := load(t, h, Spec{Name: "a", Module: mod, Pool: 1})
	// MaxUses 1: every request ends its instance and the next one is
	// instantiated from the compiled module.
	b := load(t, h, Spec{Name: "b", Module: mod, Pool: 1, MaxUses: 1})
	if n := h.compiles.Load(); n != 1 {
		t.Fatalf("%d compilations for two loads of the same bytes, want 1", n)
	}
	wantCompiled(t, h, 1, 2)
	if err := a.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	wantCompiled(t, h, 1, 1)
	created := b.Stats().Created
	for i := range 3 {
		testutil.WaitFor(t, func() bool { return b.Stats().Idle == 1 })
		next, ex, err := call(t, b, getReq)
		if err != nil || !next {
			t.Fatalf("request %d on b after a closed: next=%v err=%v", i, next, err)
		}
		if got := string(ex.Req.Header.Peek("X-Count")); got != "1" {
			t.Errorf("request %d: x-count %q, want a fresh instance's 1", i, got)
		}
	}
	testutil.WaitFor(t, func() bool { return b.Stats().Idle == 1 })
	if got := b.Stats().Created - created; got < 3 {
		t.Errorf("b created %d instances after a closed, want ≥ 3", got)
	}
	// A third load after both: still no compilation (the module is recent).
	if err := b.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	c := load(t, h, Spec{Name: "c", Module: mod, Pool: 1})
	if next, _, err := call(t, c, getReq); err != nil || !next {
		t.Fatalf("c: next=%v err=%v", next, err)
	}
	if n := h.compiles.Load(); n != 1 {
		t.Errorf("%d compilations after reloading a recent module, want 1", n)
	}
}

// TestCompiledModuleKeys checks what makes a different compiled module: the
// bytes and the runtime (memory cap, interrupts), not the name or config. A
// bounded guest (tiny) runs without interrupts whether it has a deadline or
// not; one with a loop (logloop) has them with a deadline only.
func TestCompiledModuleKeys(t *testing.T) {
	h := newHost(t)
	tiny := testdata(t, "tiny.wasm")
	loop := testdata(t, "logloop.wasm")
	steps := []struct {
		spec     Spec
		compiles uint64
	}{
		{Spec{Name: "a", Module: tiny}, 1},
		{Spec{Name: "b", Module: tiny, Config: []byte("x"), Pool: 3, MaxUses: 9}, 1},
		{Spec{Name: "a", Module: tiny, Memory: 1 << 20}, 2},
		{Spec{Name: "a", Module: tiny, Timeout: NoDeadline}, 2},
		{Spec{Name: "l", Module: loop}, 3},
		{Spec{Name: "l", Module: loop, Timeout: NoDeadline}, 4},
		{Spec{Name: "a", Module: withCustomSection(tiny, "v2")}, 5},
		{Spec{Name: "a", Module: withCustomSection(tiny, "v2"), Timeout: time.Second}, 5},
	}
	for i, s := range steps {
		s.spec.Pool = max(s.spec.Pool, 1)
		f := load(t, h, s.spec)
		if next, _, err := call(t, f, getReq); err != nil || !next {
			t.Fatalf("step %d: next=%v err=%v", i, next, err)
		}
		if n := h.compiles.Load(); n != s.compiles {
			t.Errorf("step %d: %d compilations, want %d", i, n, s.compiles)
		}
		wantCompiled(t, h, int(s.compiles), i+1)
	}
}

// TestCompiledModuleEviction loads more distinct modules than the cache
// keeps. Modules held by an open Filter stay whatever their age; closed
// ones beyond the newest 8 are closed and compile again when reloaded.
func TestCompiledModuleEviction(t *testing.T) {
	h := newHost(t)
	tiny := testdata(t, "tiny.wasm")
	const n = compiledCacheSize + 3
	mods := make([][]byte, n)
	open := make([]*Filter, n)
	for i := range mods {
		mods[i] = withCustomSection(tiny, fmt.Sprint("v", i))
		open[i] = load(t, h, Spec{Name: "f", Module: mods[i], Pool: 1})
	}
	wantCompiled(t, h, n, n)
	// Every open filter still works, including those out of the recent list.
	for i, f := range open {
		if next, _, err := call(t, f, getReq); err != nil || !next {
			t.Fatalf("filter %d: next=%v err=%v", i, next, err)
		}
	}
	// Close all but the oldest: the two next-oldest are neither held nor
	// recent any more, so they go; the oldest stays while held.
	for _, f := range open[1:] {
		if err := f.Close(testCtx); err != nil {
			t.Fatal(err)
		}
	}
	wantCompiled(t, h, compiledCacheSize+1, 1)
	// Loading the held module again compiles nothing, makes it recent
	// again, and pushes the oldest recent unused module out.
	compiles := h.compiles.Load()
	again := load(t, h, Spec{Name: "f", Module: mods[0], Pool: 1})
	if got := h.compiles.Load() - compiles; got != 0 {
		t.Errorf("loading a held module compiled %d times, want 0", got)
	}
	wantCompiled(t, h, compiledCacheSize, 2)
	for _, f := range []*Filter{open[0], again} {
		if err := f.Close(testCtx); err != nil {
			t.Fatal(err)
		}
	}
	wantCompiled(t, h, compiledCacheSize, 0)

	newest := load(t, h, Spec{Name: "f", Module: mods[n-1], Pool: 1})
	if got := h.compiles.Load() - compiles; got != 0 {
		t.Errorf("reloading the newest module compiled %d times, want 0", got)
	}
	evicted := load(t, h, Spec{Name: "f", Module: mods[3], Pool: 1})
	if got := h.compiles.Load() - compiles; got != 1 {
		t.Errorf("reloading an evicted module compiled %d times, want 1", got)
	}
	for _, f := range []*Filter{newest, evicted} {
		if next, _, err := call(t, f, getReq); err != nil || !next {
			t.Fatalf("reloaded: next=%v err=%v", next, err)
		}
	}
	wantCompiled(t, h, compiledCacheSize, 2)
}

// wantCompiled checks how many compiled modules the Host holds and how many
// Filter references they have, and that every module compiled and not
// held was closed.
func wantCompiled(t *testing.T, h *Host, modules, refs int) {
	t.Helper()
	m, r := cachedModules(h)
	if m != modules || r != refs {
		t.Errorf("host holds %d modules with %d refs, want %d and %d", m, r, modules, refs)
	}
	if compiled, closed := h.compiles.Load(), h.closedModules.Load(); compiled-closed != uint64(m) {
		t.Errorf("%d modules compiled, %d closed, %d held: a module leaked or closed twice", compiled, closed, m)
	}
}

// TestCompiledModuleRejectsAreNotCached: a module that compiles but fails
// the checks fails every Load, and leaves nothing behind.
func TestCompiledModuleRejectsAreNotCached(t *testing.T) {
	h := newHost(t)
	bad := bytes.Replace(testdata(t, "tiny.wasm"), []byte("handle_request"), []byte("handle_requesX"), 1)
	for i := range 2 {
		if _, err := h.Load(testCtx, Spec{Name: "bad", Module: bad}); err == nil {
			t.Fatalf("load %d of a module without handle_request succeeded", i)
		}
	}
	if n := h.compiles.Load(); n != 2 {
		t.Errorf("%d compilations, want 2", n)
	}
	wantCompiled(t, h, 0, 0)
}

// TestHostCloseReleasesCompiled closes the Host under open Filters that
// share a module: everything is released, and the Filters' later Close and
// Release are harmless.
func TestHostCloseReleasesCompiled(t *testing.T) {
	h, err := NewHost(testCtx, "")
	if err != nil {
		t.Fatal(err)
	}
	tiny := testdata(t, "tiny.wasm")
	a, err := h.Load(testCtx, Spec{Name: "a", Module: tiny, Pool: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.Load(testCtx, Spec{Name: "b", Module: tiny, Pool: 1})
	if err != nil {
		t.Fatal(err)
	}
	inst, err := b.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	wantCompiled(t, h, 0, 0)
	h.mu.Lock()
	recent := len(h.recent)
	h.mu.Unlock()
	if recent != 0 {
		t.Errorf("closed host keeps %d recent modules", recent)
	}
	inst.Release()
	if err := a.Close(testCtx); err != nil {
		t.Errorf("close a after host: %v", err)
	}
	if err := b.Close(testCtx); err != nil {
		t.Errorf("close b after host: %v", err)
	}
	if _, err := h.Load(testCtx, Spec{Name: "c", Module: tiny}); !errors.Is(err, ErrClosed) {
		t.Errorf("load after host close: %v", err)
	}
}

// TestCompiledModuleHammer loads, uses and closes Filters of two module
// versions from P goroutines at once (run with -race): the shared modules'
// reference counts must come back to zero, and every Load and request must
// succeed.
func TestCompiledModuleHammer(t *testing.T) {
	const (
		P = 6
		N = 30
	)
	h := newHost(t)
	tiny := testdata(t, "tiny.wasm")
	versions := [][]byte{tiny, withCustomSection(tiny, "v2")}
	start := make(chan struct{})
	errs := make(chan error, P)
	var wg sync.WaitGroup
	for p := range P {
		wg.Go(func() {
			<-start
			for n := range N {
				f, err := h.Load(testCtx, Spec{Name: "h", Module: versions[(p+n)%2], Pool: 1, Timeout: 10 * time.Second})
				if err != nil {
					errs <- err
					return
				}
				inst, err := f.Acquire(testCtx)
				if err == nil {
					ex := &Exchange{Req: &fasthttp.Request{}, Resp: &fasthttp.Response{}}
					_, err = inst.HandleRequest(testCtx, ex)
					inst.Release()
				}
				if cerr := f.Close(testCtx); err == nil {
					err = cerr
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantCompiled(t, h, 2, 0)
	// Racing first loads may each compile; after that, none may.
	if n := h.compiles.Load(); n > 2*P {
		t.Errorf("%d compilations for %d loads of 2 modules", n, P*N)
	}
	t.Logf("%d loads, %d compilations", P*N, h.compiles.Load())
}

// BenchmarkLoadGoGuest is what a reload costs for a filter whose module did
// not change (its config or limits did): Load of a standard-Go guest into a
// pool of one instance, and Close of the previous Filter. The host's disk
// cache is warm, as after the first load of a process. "goguest" is
// testdata/goguest; "eventallow" is the 3.3 MB example filter, when built.
func BenchmarkLoadGoGuest(b *testing.B) {
	guests := []struct {
		name   string
		config string
		wasm   func(b *testing.B) []byte
	}{
		{"goguest", "", func(b *testing.B) []byte { return buildGoGuest(b) }},
		{"eventallow", `{"allow": ["push"]}`, func(b *testing.B) []byte {
			wasm, err := os.ReadFile(filepath.Join("..", "..", "examples", "filters", "eventallow", "eventallow.wasm"))
			if err != nil {
				b.Skip(err)
			}
			return wasm
		}},
	}
	for _, g := range guests {
		b.Run(g.name, func(b *testing.B) {
			wasm := g.wasm(b)
			h := goHost(b)
			spec := Spec{Name: "go", Module: wasm, Config: []byte(g.config), Pool: 1}
			prev, err := h.Load(testCtx, spec)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				next, err := h.Load(testCtx, spec)
				if err != nil {
					b.Fatal(err)
				}
				_ = prev.Close(testCtx)
				prev = next
			}
			_ = prev.Close(testCtx)
		})
	}
}
