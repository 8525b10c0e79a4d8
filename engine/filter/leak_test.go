//go:build !race

package filter

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// TestNoGrowthWithTrappingGuests runs 10,000 calls that trap, each one
// discarding its instance, and checks that neither goroutines nor the heap
// grow: closed instances, their memory and their traces are all released.
func TestNoGrowthWithTrappingGuests(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 instantiations")
	}
	h := newHost(t)
	f := load(t, h, Spec{Name: "unreachable", Module: testdata(t, "unreachable.wasm"), Pool: 4})
	const trapReq = "GET / HTTP/1.1\r\nHost: x\r\nX-Trap: 1\r\n\r\n"
	run := func(n int) {
		for range n {
			_, _, err := call(t, f, trapReq)
			wantKind(t, err, KindTrap)
		}
		// Let the background refill finish before measuring.
		testutil.WaitFor(t, func() bool { st := f.Stats(); return st.Live == 4 && st.Idle == 4 && !f.refilling.Load() })
	}
	measure := func() (int, uint64) {
		var ms runtime.MemStats
		for range 3 {
			runtime.GC()
		}
		runtime.ReadMemStats(&ms)
		return runtime.NumGoroutine(), ms.HeapAlloc
	}

	run(500) // warm up caches and pools
	g0, heap0 := measure()
	start := time.Now()
	const calls = 10000
	run(calls)
	took := time.Since(start)
	g1, heap1 := measure()

	st := f.Stats()
	if st.Errors.Trap != calls+500 || st.Discarded != calls+500 {
		t.Errorf("stats %+v, want %d traps and discards", st, calls+500)
	}
	if g1 > g0+2 {
		t.Errorf("goroutines grew from %d to %d", g0, g1)
	}
	const tolerance = 8 << 20
	if heap1 > heap0+tolerance {
		t.Errorf("heap grew from %d to %d bytes (tolerance %d)", heap0, heap1, tolerance)
	}
	t.Logf("%d trapping calls in %v (%v each): goroutines %d→%d, heap %d→%d KiB",
		calls, took, took/calls, g0, g1, heap0>>10, heap1>>10)
}

// TestAllocsPerRequest holds the per-request allocation budget of the
// filter stage for a tiny guest with the deadline on and with none.
func TestAllocsPerRequest(t *testing.T) {
	h := newHost(t)
	ex, _, _ := newExchange(t, getReq)
	// tiny is a bounded guest (boundedGuest): its deadline costs no watcher goroutine, whose
	// goroutine, channel and closure would be three allocations a call. Without a deadline
	// there is no timer either: no more than with one.
	const budget = 0
	for _, tc := range []struct {
		name    string
		timeout time.Duration
	}{{"deadline", time.Second}, {"no deadline", NoDeadline}} {
		f := load(t, h, Spec{Name: "tiny", Module: testdata(t, "tiny.wasm"), Timeout: tc.timeout, Pool: 1, MaxUses: 1 << 30})
		allocs := testing.AllocsPerRun(1000, func() { serve(t, f, ex) })
		if allocs > budget {
			t.Errorf("%s: %v allocs per request, budget %d", tc.name, allocs, budget)
		}
		t.Logf("%s: %v allocs per request (handle_request + handle_response)", tc.name, allocs)
	}
}

// TestGoGuestPoolRSS measures what 8 pooled standard-Go instances, each
// having served a request, add to the process RSS. The target is a
// gateway RSS ≤ 150 MB with 8 of them; a bare gateway process is well under
// 50 MiB, so the instances may add at most 100 MiB. Not under -race, which
// inflates memory.
func TestGoGuestPoolRSS(t *testing.T) {
	wasm := buildGoGuest(t)
	before := rssBytes(t)
	h := goHost(t)
	const pool = 8
	f := load(t, h, Spec{Name: "go", Module: wasm, Pool: pool})
	insts := make([]*Instance, 0, pool)
	for range pool {
		inst, err := f.Acquire(testCtx)
		if err != nil {
			t.Fatal(err)
		}
		insts = append(insts, inst)
		ex, _, _ := newExchange(t, "POST /hook HTTP/1.1\r\nHost: x\r\nX-Event: push\r\nContent-Length: 0\r\n\r\n")
		if next, err := inst.HandleRequest(testCtx, ex); err != nil || !next {
			t.Fatal(next, err)
		}
	}
	if st := f.Stats(); st.Live != pool || st.InUse != pool {
		t.Fatalf("stats %+v", st)
	}
	after := rssBytes(t)
	for _, inst := range insts {
		inst.Release()
	}
	t.Logf("RSS %d MiB before load, %d MiB with %d Go instances (+%d MiB)", before>>20, after>>20, pool, (after-before)>>20)
	if after-before > 100<<20 {
		t.Errorf("%d Go instances added %d MiB RSS, budget 100 MiB", pool, (after-before)>>20)
	}
}

func rssBytes(t testing.TB) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for line := range strings.Lines(string(b)) {
		var kb uint64
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	t.Skip("no VmRSS")
	return 0
}
