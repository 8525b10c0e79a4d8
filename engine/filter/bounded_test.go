package filter

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A module is bounded only when the reader can prove that every call ends within
// boundedSteps instructions; anything it does not follow is not.
func TestBoundedGuest(t *testing.T) {
	const head = `(module
  (import "http_handler" "get_method" (func $get_method (param i32 i32) (result i32)))
  (import "hookwall" "set_label" (func $set_label (param i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (global $g (mut i32) (i32.const 0))
`
	const request = `(func (export "handle_request") (result i64) (call $work) (i64.const 1))`
	// fan builds a chain of functions $f0..$fn, each calling the one before it four times:
	// the chain's last function runs 4^n times $f0's instructions.
	fan := func(n int) string {
		var b strings.Builder
		b.WriteString(`(func $f0 (drop (i32.add (i32.const 1) (i32.const 2))))`)
		for i := 1; i <= n; i++ {
			prev := "$f" + string(rune('0'+i-1))
			b.WriteString(`(func $f` + string(rune('0'+i)) + ` (call ` + prev + `) (call ` + prev + `) (call ` + prev + `) (call ` + prev + `))`)
		}
		b.WriteString(`(func $work (call $f` + string(rune('0'+n)) + `))`)
		return b.String()
	}
	for _, tc := range []struct {
		name, funcs string
		want        bool
	}{
		{"host calls and branches", `(func $work
			(if (i32.gt_u (call $get_method (i32.const 64) (i32.const 16)) (i32.const 16))
				(then (call $set_label (i32.const 0) (i32.const 4) (i32.const 4) (i32.const 4)))
				(else (global.set $g (i32.const 1)))))`, true},
		{"every immediate kind", `(func $work (local i64 f64)
			(block $out (result i32)
				(br_table $out $out (i32.const 7) (i32.const 0)))
			(drop)
			(block (br_if 0 (i32.const 0)) (br 0))
			(local.set 0 (i64.const -9223372036854775808))
			(local.set 1 (f64.const 1.5))
			(drop (f32.const 2.5))
			(i32.store offset=8 (i32.const 0) (i32.load8_u offset=3 (i32.const 0)))
			(drop (memory.size))
			(drop (i32.trunc_sat_f64_s (local.get 1)))
			(drop (i64.extend32_s (local.get 0)))
			(drop (select (i32.const 1) (i32.const 2) (i32.const 0)))
			(drop (ref.is_null (ref.null func)))
			(return))`, true},
		// $f0 is five instructions (its end counts): 4^5 calls of it run 5120, 4^6 run 20480.
		{"calls within the bound", fan(5), true},
		{"calls past the bound", fan(6), false},
		{"loop", `(func $work (loop $l (br_if $l (i32.const 0))))`, false},
		{"recursion", `(func $work (if (global.get $g) (then (call $work))))`, false},
		{"mutual recursion", `(func $work (call $other)) (func $other (if (global.get $g) (then (call $work))))`, false},
		{"indirect call", `(table 1 funcref) (type $v (func)) (func $work (call_indirect (type $v) (i32.const 0)))`, false},
		{"memory.grow", `(func $work (drop (memory.grow (i32.const 1))))`, false},
		{"memory.fill", `(func $work (memory.fill (i32.const 0) (i32.const 0) (i32.const 65536)))`, false},
		{"SIMD", `(func $work (drop (i32x4.extract_lane 0 (v128.const i32x4 1 2 3 4))))`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mod := wat(t, head+tc.funcs+request+")")
			if got := boundedGuest(mod); got != tc.want {
				t.Fatalf("boundedGuest = %v, want %v", got, tc.want)
			}
			start, end := codeSection(t, mod)
			for n := start + 1; n < end; n++ { // a module cut short in its code is never bounded
				if boundedGuest(mod[:n]) {
					t.Fatalf("truncated to %d bytes: reported bounded", n)
				}
			}
		})
	}
	// The interpreter (wazero's engine where it does not compile) sets every declared local
	// to zero on each call: a local costs a step, or a function declaring a hundred of them
	// and called two hundred times would do 20,000 writes in a call counted as 601 steps.
	t.Run("locals of a function called often", func(t *testing.T) {
		callee := `(func $many (local ` + strings.Repeat("i64 ", 100) + `) (nop))`
		mod := wat(t, head+callee+`(func $work`+strings.Repeat(" (call $many)", 200)+`)`+request+")")
		if boundedGuest(mod) {
			t.Fatal("a function of 100 locals called 200 times reported bounded")
		}
		once := wat(t, head+callee+`(func $work (call $many))`+request+")")
		if !boundedGuest(once) {
			t.Fatal("a function of 100 locals called once reported unbounded")
		}
	})
	// br_table's count of targets is at most the bytes left to hold them: a malformed count
	// of four billion must not keep the reader looping over nothing for seconds.
	t.Run("huge br_table count", func(t *testing.T) {
		body := []byte{0x00, 0x41, 0x00, 0x0e, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0b}
		t0 := time.Now()
		var f boundedFunc
		if f.read(body) {
			t.Error("a br_table of 2^32-1 targets in ten bytes read as bounded")
		}
		if took := time.Since(t0); took > 100*time.Millisecond {
			t.Errorf("reading took %v", took)
		}
	})
	t.Run("WASI import", func(t *testing.T) {
		mod := wat(t, `(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i64) (drop (call $random (i32.const 0) (i32.const 8))) (i64.const 1)))`)
		if boundedGuest(mod) {
			t.Fatal("a guest importing WASI reported bounded: WASI functions do not check the deadline")
		}
	})
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"testdata/tiny.wasm", true},
		{"testdata/hookwall.wasm", true},
		{"../../examples/filters/tiny/tiny.wasm", true},
		{"testdata/loop.wasm", false},
		{"testdata/logloop.wasm", false},
		{"testdata/flood.wasm", false},
		{"testdata/grow.wasm", false},
		{"../../examples/filters/eventallow/eventallow.wasm", false}, // a standard-Go guest
	} {
		b, err := os.ReadFile(filepath.FromSlash(tc.path))
		if err != nil {
			t.Fatal(err)
		}
		if got := boundedGuest(b); got != tc.want {
			t.Errorf("%s: boundedGuest = %v, want %v", tc.path, got, tc.want)
		}
	}
}

// A bounded guest runs in the runtime without interrupts, and its deadline still holds: the
// host call it makes after the deadline ends the call as a timeout, and the instance is
// discarded. The guest calls log ten times in a straight line, and each log takes 20 ms (the
// logger's handler sleeps): without the host functions' check the call would return after
// 200 ms, successfully.
func TestBoundedGuestStopsAtHostCallAfterDeadline(t *testing.T) {
	var calls strings.Builder
	for range 10 {
		calls.WriteString("(call $log (i32.const 2) (i32.const 0) (i32.const 4))\n")
	}
	mod := wat(t, `(module
  (import "http_handler" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "slow")
  (func (export "handle_request") (result i64)
    `+calls.String()+`
    (i64.const 1)))`)
	if !boundedGuest(mod) {
		t.Fatal("the test guest must be bounded")
	}
	h := newHost(t)
	const timeout = 30 * time.Millisecond
	f := load(t, h, Spec{Name: "slowlog", Module: mod, Timeout: timeout, Pool: 1, Logger: slog.New(slowHandler{20 * time.Millisecond})})
	for key, rt := range h.runtimes {
		if rt == f.rt && key.interrupt {
			t.Fatal("a bounded guest with a deadline must run in the runtime without interrupts")
		}
	}
	t0 := time.Now()
	_, _, err := call(t, f, getReq)
	took := time.Since(t0)
	wantKind(t, err, KindTimeout)
	if took >= 150*time.Millisecond {
		t.Errorf("the call took %v with a deadline of %v", took, timeout)
	}
	if st := f.Stats(); st.Discarded != 1 || st.Errors.Timeout != 1 {
		t.Errorf("stats %+v, want the timed-out instance discarded and counted", st)
	}
	// The check stops only a call past its deadline: a bounded guest that ends within the
	// same deadline answers.
	tiny := load(t, h, Spec{Name: "tiny", Module: testdata(t, "tiny.wasm"), Timeout: timeout, Pool: 1})
	if next, _, err := call(t, tiny, getReq); err != nil || !next {
		t.Fatalf("tiny: next %v, err %v", next, err)
	}
}

// codeSection returns where the code section of mod starts and ends.
func codeSection(t *testing.T, mod []byte) (start, end int) {
	t.Helper()
	r := wasmReader{b: mod, off: 8}
	for r.off < len(r.b) && r.err == nil {
		at := r.off
		id := r.byte()
		size := r.u32()
		if id == 10 {
			return at, r.off + int(size)
		}
		r.off += int(size)
	}
	t.Fatal("no code section")
	return 0, 0
}

// slowHandler is a slog handler that takes its time over every record.
type slowHandler struct{ d time.Duration }

func (h slowHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h slowHandler) Handle(context.Context, slog.Record) error {
	time.Sleep(h.d)
	return nil
}
func (h slowHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h slowHandler) WithGroup(string) slog.Handler      { return h }
