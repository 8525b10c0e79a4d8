package filter

import (
	"encoding/binary"
	"runtime"
	"strings"
	"testing"
	"time"
)

// recurseWAT recurses as deep as its config says (a little-endian u32), one wasm frame a
// level: the add after the call keeps the call from being a tail call. Its memory is one page
// and cannot grow, so under a 64 KiB cap it is always full.
const recurseWAT = `(module
  (import "http_handler" "get_config" (func $get_config (param i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (func $down (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (i32.const 0))
      (else (i32.add (i32.const 1) (call $down (i32.sub (local.get $n) (i32.const 1)))))))
  (func (export "handle_request") (result i64)
    (drop (call $get_config (i32.const 0) (i32.const 4)))
    (drop (call $down (i32.load (i32.const 0))))
    (i64.const 1)))`

func depthConfig(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }

// heapInUse is the host's heap in use once the garbage is collected.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestDeepRecursionLeavesNoStackInThePool: wazero keeps a guest's call stack in host memory,
// outside the memory cap, and a function handle keeps the stack it grew. A guest that
// recursed half a million levels deep grew some 15 MiB of it; pooled instances that each did
// so once must not keep that (4 of them kept 60 MiB before their handles were renewed after a
// long call), with and without a deadline. Short calls keep their handle and allocate nothing.
func TestDeepRecursionLeavesNoStackInThePool(t *testing.T) {
	mod := wat(t, recurseWAT)
	h := newHost(t)
	const pool, depth = 4, 500_000
	for _, run := range []struct {
		name    string
		timeout time.Duration
	}{{"deadline", 10 * time.Second}, {"no deadline", NoDeadline}} {
		f := load(t, h, Spec{Name: "deep", Module: mod, Config: depthConfig(depth), Pool: pool, PoolMax: pool, Memory: pageSize, Timeout: run.timeout})
		before := heapInUse()
		insts := make([]*Instance, pool)
		for n := range insts {
			inst, err := f.Acquire(testCtx)
			if err != nil {
				t.Fatal(err)
			}
			ex, _, _ := newExchange(t, getReq)
			start := time.Now()
			if next, err := inst.HandleRequest(testCtx, ex); err != nil || !next {
				t.Fatalf("%s: next=%v err=%v", run.name, next, err)
			}
			if took := time.Since(start); took < renewAfter {
				t.Fatalf("%s: %d levels took %v, less than %v: the test cannot tell", run.name, depth, took, renewAfter)
			}
			if inst.renewals != 1 {
				t.Errorf("%s: %d renewals after a long call, want 1", run.name, inst.renewals)
			}
			insts[n] = inst
		}
		for _, inst := range insts {
			inst.Release()
		}
		grew := int64(heapInUse()) - int64(before)
		if st := f.Stats(); st.Idle != pool || st.Discarded != 0 {
			t.Fatalf("%s: stats %+v, want %d idle instances", run.name, st, pool)
		}
		t.Logf("%s: %d pooled instances that each recursed %d levels: host heap %+d KiB", run.name, pool, depth, grew>>10)
		if grew > 8<<20 {
			t.Errorf("%s: the pool keeps %d MiB of host heap after deep recursion, want under 8 MiB", run.name, grew>>20)
		}
	}

	// A short call, the common case, keeps its handle and allocates nothing (no deadline:
	// a guest that is not bounded costs wazero's watcher goroutine per call with one).
	f := load(t, h, Spec{Name: "shallow", Module: mod, Config: depthConfig(8), Pool: 1, PoolMax: 1, Timeout: NoDeadline})
	inst, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Release()
	ex, _, _ := newExchange(t, getReq)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := inst.HandleRequest(testCtx, ex); err != nil {
			t.Fatal(err)
		}
	})
	// A renewal follows a call that ran past renewAfter by the wall clock, which a
	// preemption on a busy machine can make of a short call now and then: a few are noise,
	// a renewal every call (or most) is the fault.
	if allocs != 0 || inst.renewals > 3 {
		t.Errorf("101 short calls: %.1f allocations a call, %d renewals, want none (noise: at most 3)", allocs, inst.renewals)
	}
}

// TestStackOverflowIsNotOOM: a guest whose recursion overflows wazero's call stack fails
// with a trap, even when its memory is at the cap; one whose memory.grow failed at the cap
// and that then trapped ran out of memory.
func TestStackOverflowIsNotOOM(t *testing.T) {
	h := newHost(t)
	cases := []struct {
		name   string
		mod    []byte
		config []byte
		want   ErrorKind
		says   string
	}{
		{"endless recursion, memory full", wat(t, recurseWAT), depthConfig(1<<32 - 1), KindTrap, "stack overflow"},
		{"memory.grow refused at the cap", testdata(t, "grow.wasm"), nil, KindOOM, "unreachable"},
	}
	for _, c := range cases {
		f := load(t, h, Spec{Name: "f", Module: c.mod, Config: c.config, Pool: 1, PoolMax: 1, Memory: pageSize})
		ex, _, _ := newExchange(t, getReq)
		inst, err := f.Acquire(testCtx)
		if err != nil {
			t.Fatal(err)
		}
		_, err = inst.HandleRequest(testCtx, ex)
		pages, _ := inst.mod.Memory().Grow(0)
		inst.Release()
		if pages != 1 {
			t.Fatalf("%s: memory of %d pages, want 1 (the cap)", c.name, pages)
		}
		fe := wantKind(t, err, c.want)
		if !strings.Contains(fe.Error(), c.says) {
			t.Errorf("%s: error %q does not say %q", c.name, fe.Error(), c.says)
		}
		f.Close(testCtx)
	}
}
