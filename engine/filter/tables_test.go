package filter

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTablesCountAgainstMemoryCap: wazero keeps a guest's tables on the host's heap, 8 bytes an
// entry, with no limit of its own. Load refuses a module whose tables could take more than
// its memory cap (a guest capped at 64 KiB growing a table by 16M entries took 128 MiB of
// host heap, and kept it in the pool), and loads one whose growth is bounded within it.
func TestTablesCountAgainstMemoryCap(t *testing.T) {
	h := newHost(t)
	refused := []struct {
		name, src string
		want      []string
	}{
		{"grow without max", `(module
  (memory (export "memory") 1 1)
  (table $t 0 externref)
  (func (export "handle_request") (result i64)
    (if (i32.eq (table.grow $t (ref.null extern) (i32.const 16777216)) (i32.const -1))
      (then (return (i64.const 0))))
    (i64.const 1)))`, []string{"filter/t: ", "table 0 has no maximum", "table.grow", "8192 entries", "raise memory"}},
		{"grow to a max past the cap", `(module
  (memory (export "memory") 1 1)
  (table $t 0 100000 funcref)
  (func (export "handle_request") (result i64)
    (drop (table.grow $t (ref.null func) (i32.const 1)))
    (i64.const 1)))`, []string{"table 0 may grow to 100000 entries", "8192 entries"}},
		{"huge minimum", `(module
  (memory (export "memory") 1 1)
  (table 16777216 externref)
  (func (export "handle_request") (result i64) (i64.const 1)))`, []string{"table 0 declares 16777216 entries", "65536 bytes", "8192 entries"}},
		{"tables that add up past the cap", `(module
  (memory (export "memory") 1 1)
  (table 5000 externref)
  (table 5000 funcref)
  (func (export "handle_request") (result i64) (i64.const 1)))`, []string{"table 1 declares 5000 entries, 10000 with the tables before it"}},
		{"grown second table", `(module
  (memory (export "memory") 1 1)
  (table 1 1 funcref)
  (table $g 0 externref)
  (func (export "handle_request") (result i64)
    (block (result i32) (i32.const 1) (br 0))
    (drop)
    (drop (table.grow $g (ref.null extern) (i32.const 1)))
    (i64.const 1)))`, []string{"table 1 has no maximum"}},
		{"imported table", `(module
  (import "wasi_snapshot_preview1" "t" (table 1 funcref))
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i64) (i64.const 1)))`, []string{"imports a table"}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Load(testCtx, Spec{Name: "t", Module: wat(t, tc.src), Memory: 64 << 10, Pool: 1})
			if err == nil {
				t.Fatal("loaded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}

	// Within the cap: a table with a maximum the code grows to (and not past), and a larger
	// table once the cap is raised.
	f := load(t, h, Spec{Name: "bounded-grow", Memory: 64 << 10, Pool: 1, Module: wat(t, `(module
  (memory (export "memory") 1 1)
  (table $t 0 8192 externref)
  (func (export "handle_request") (result i64)
    (if (i32.ne (table.grow $t (ref.null extern) (i32.const 8192)) (i32.const 0))
      (then (return (i64.const 0))))
    (if (i32.ne (table.grow $t (ref.null extern) (i32.const 1)) (i32.const -1))
      (then (return (i64.const 0))))
    (i64.const 1)))`)})
	if next, _, err := call(t, f, getReq); err != nil || !next {
		t.Errorf("table.grow within the maximum, then past it: next=%v err=%v", next, err)
	}
	load(t, h, Spec{Name: "raised", Memory: 1 << 20, Pool: 1, Module: wat(t, `(module
  (memory (export "memory") 1 1)
  (table 131072 externref)
  (func (export "handle_request") (result i64) (i64.const 1)))`)})
}

// TestTableCheckReadsEveryInstruction: the check finds table.grow by reading every
// instruction, so it must read through every instruction the runtime's features allow (here
// multi-value blocks, loops, indirect calls, typed select, sign extension, saturating
// conversions, bulk memory and table instructions, SIMD with each kind of immediate), and
// through every guest the gateway runs: the committed test guests, the examples (standard Go
// and TinyGo) and the http-wasm kit's guests.
func TestTableCheckReadsEveryInstruction(t *testing.T) {
	h := newHost(t)
	load(t, h, Spec{Name: "features", Pool: 1, Module: wat(t, `(module
  (type $pair (func (result i32 i32)))
  (memory (export "memory") 1 1)
  (table $f 2 2 funcref)
  (table $e 1 4 externref)
  (elem (table $f) (i32.const 0) func $one $one)
  (elem $passive func $one)
  (data $d "abcdefghijklmnop")
  (func $one (result i32) (i32.const 1))
  (func (export "handle_request") (result i64)
    (local i32 i64 f32 f64 v128)
    (block (type $pair) (i32.const 1) (i32.const 2))
    (drop) (drop)
    (loop $l (br_if $l (i32.const 0)))
    (drop (call_indirect $f (result i32) (i32.const 1)))
    (drop (select (result i64) (i64.const 1) (i64.const 2) (i32.const 0)))
    (drop (i32.extend8_s (i32.const 255)))
    (drop (i64.trunc_sat_f64_s (f64.const 1.5)))
    (drop (f32.const 2.5))
    (memory.init $d (i32.const 0) (i32.const 0) (i32.const 4))
    (data.drop $d)
    (memory.copy (i32.const 8) (i32.const 0) (i32.const 4))
    (memory.fill (i32.const 16) (i32.const 0) (i32.const 4))
    (table.init $f $passive (i32.const 1) (i32.const 0) (i32.const 1))
    (elem.drop $passive)
    (table.copy $f $f (i32.const 0) (i32.const 1) (i32.const 1))
    (drop (table.size $e))
    (table.fill $e (i32.const 0) (ref.null extern) (i32.const 1))
    (table.set $e (i32.const 0) (table.get $e (i32.const 0)))
    (drop (table.grow $e (ref.null extern) (i32.const 1)))
    (drop (ref.is_null (ref.func $one)))
    (local.set 4 (v128.const i32x4 1 2 3 4))
    (local.set 4 (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (local.get 4) (local.get 4)))
    (drop (i32x4.extract_lane 2 (local.get 4)))
    (local.set 4 (v128.load8_lane 3 (i32.const 0) (local.get 4)))
    (local.set 4 (v128.load32_zero (i32.const 0)))
    (v128.store offset=32 (i32.const 0) (i32x4.add (local.get 4) (v128.load (i32.const 0))))
    (drop (i64x2.all_true (local.get 4)))
    (drop (memory.grow (i32.const 0)))
    (block (block (br_table 0 1 0 (i32.const 0))))
    (i64.const 1)))`)})

	var guests []string
	for _, dir := range []string{"testdata", "../../examples/filters"} {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".wasm") {
				guests = append(guests, p)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ref, err := refDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"examples", "tck", "internal/test/testdata"} {
		if err := filepath.WalkDir(filepath.Join(ref, sub), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(p, ".wasm") {
				guests = append(guests, p)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(guests) < 40 {
		t.Fatalf("found %d guests, want the test guests, the examples and the kit's", len(guests))
	}
	for _, p := range guests {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkTables(b, 32<<20); err != nil {
			t.Errorf("%s: %v", filepath.Base(p), err)
		}
	}
}

// TestTableCheckRefusesWhatItCannotRead: an instruction of a feature the runtime does not
// enable, or a body cut short, is refused rather than passed over (wazero refuses such a
// module first; the reader must not guess either).
func TestTableCheckRefusesWhatItCannotRead(t *testing.T) {
	for name, body := range map[string][]byte{
		"exceptions try":      {0x00, 0x06, 0x40, 0x0b, 0x0b},
		"tail call":           {0x00, 0x12, 0x00, 0x0b},
		"atomics":             {0x00, 0xfe, 0x03, 0x00, 0x0b},
		"relaxed SIMD":        {0x00, 0xfd, 0x80, 0x02, 0x0b},
		"unassigned SIMD":     {0x00, 0xfd, 0x9a, 0x01, 0x0b},
		"unknown 0xfc":        {0x00, 0xfc, 0x12, 0x0b},
		"grow of no table":    {0x00, 0xfc, 0x0f, 0x00, 0x0b},
		"no final end":        {0x00, 0x01},
		"bytes after end":     {0x00, 0x0b, 0x01},
		"truncated v128":      {0x00, 0xfd, 0x0c, 0x01, 0x02},
		"truncated i32.const": {0x00, 0x41, 0x80},
	} {
		if err := markTableGrowth(body, nil); err == nil {
			t.Errorf("%s: read", name)
		}
	}
}
