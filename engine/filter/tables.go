package filter

import (
	"errors"
	"fmt"
)

// tableEntryBytes is what one table entry costs the host: wazero keeps a guest's tables on
// the Go heap, outside its linear memory, as one 8-byte reference an entry.
const tableEntryBytes = 8

// tableBudget is how many table entries, all of a module's tables together, a filter whose
// linear memory is capped at memLimit bytes may have: as many as fit in memLimit at
// tableEntryBytes each. wazero sets no limit on tables, so without one a guest capped at
// 64 KiB could declare, or grow with table.grow, tables of four billion entries (32 GiB of
// host heap each). Tied to the memory cap, an instance takes at most twice its cap (memory
// and tables), and an operator who raises `memory` for a large guest (whose function table
// grows with its code) raises both: the default 32 MiB allows 4,194,304 entries, a standard
// Go guest uses a few thousand, the smallest cap (one page) 8,192.
func tableBudget(memLimit uint64) uint64 { return memLimit / tableEntryBytes }

// wasmTable is one table a module defines: its declared minimum and, when it has one, its
// maximum.
type wasmTable struct {
	min, max uint32
	hasMax   bool
	grown    bool // the code runs table.grow on it
}

// checkTables refuses a module whose tables could take more host memory than
// tableBudget(memLimit) entries: one that imports a table (the host exports none), whose
// tables' declared minimums add up past the budget, or whose code runs table.grow on a table
// with no maximum, or on one whose maximum (with the other tables) is past the budget. To find
// every table.grow it reads every instruction of every function, as the features hookwall's
// runtime enables encode them (WebAssembly 2.0: MVP, sign extension, multi-value,
// non-trapping conversions, bulk memory, reference types, SIMD); a module it cannot read
// through is refused, not guessed at.
//
// wasm is a module wazero compiled, so it is valid; the reader still checks every bound.
func checkTables(wasm []byte, memLimit uint64) error {
	var tables []wasmTable
	var bodies [][]byte
	var failed error
	read := eachSection(wasm, func(id byte, sec *wasmReader) bool {
		switch id {
		case 2: // imports
			_, n, _, ok := sec.imports()
			if !ok {
				failed = errors.New("cannot read its import section")
				return false
			}
			if n > 0 {
				failed = errors.New("guest imports a table; the host exports none, it must define its own")
				return false
			}
		case 4: // tables
			for range sec.count() {
				var t wasmTable
				if !sec.tableType(&t) {
					failed = fmt.Errorf("cannot read table %d of its table section", len(tables))
					return false
				}
				tables = append(tables, t)
			}
		case 10: // code
			var ok bool
			if bodies, ok = sec.funcBodies(); !ok {
				failed = errors.New("cannot read its code section")
				return false
			}
		}
		return sec.err == nil
	})
	if failed != nil {
		return fmt.Errorf("table check: %w", failed)
	}
	if !read {
		return errors.New("table check: cannot read the module's sections")
	}
	for i, body := range bodies {
		if err := markTableGrowth(body, tables); err != nil {
			return fmt.Errorf("table check: function %d: %w", i, err)
		}
	}
	budget := tableBudget(memLimit)
	var total uint64
	for i, t := range tables {
		size := uint64(t.min)
		if t.grown {
			if !t.hasMax {
				return fmt.Errorf("table %d has no maximum and the guest grows it (table.grow): the tables of a filter "+
					"with a memory cap of %d bytes may hold %d entries (8 bytes each, within the cap); "+
					"give the table a maximum within that, or raise memory", i, memLimit, budget)
			}
			size = uint64(t.max)
		}
		if total += size; total > budget {
			what := "declares"
			if t.grown {
				what = "may grow to"
			}
			with := ""
			if total != size {
				with = fmt.Sprintf(", %d with the tables before it", total)
			}
			return fmt.Errorf("table %d %s %d entries%s: the tables of a filter "+
				"with a memory cap of %d bytes may hold %d entries (8 bytes each, within the cap); "+
				"declare smaller tables, or raise memory", i, what, size, with, memLimit, budget)
		}
	}
	return nil
}

// tableType reads a table type: a reference type and limits (a minimum, and a maximum when
// the flags say so). The 64-bit and shared forms are not among the features enabled.
func (r *wasmReader) tableType(t *wasmTable) bool {
	if rt := r.byte(); rt != 0x70 && rt != 0x6f { // funcref, externref
		return false
	}
	flags := r.byte()
	if flags > 0x01 {
		return false
	}
	t.min = r.u32()
	if flags == 0x01 {
		t.max, t.hasMax = r.u32(), true
	}
	return r.err == nil
}

// markTableGrowth reads every instruction of one function body (its locals, then up to its
// final end) and marks the tables its table.grow instructions name. An instruction it does
// not know, one of a feature the runtime does not enable (threads, tail calls, exceptions,
// relaxed SIMD), or a malformed byte is an error.
func markTableGrowth(body []byte, tables []wasmTable) error {
	r := wasmReader{b: body}
	if _, ok := r.locals(); !ok {
		return errors.New("cannot read its locals")
	}
	depth := 1 // the body is a block: its final end closes it
	for r.err == nil && depth > 0 {
		at := r.off
		op := r.byte()
		switch {
		case op == 0x00, op == 0x01, op == 0x05, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1:
			// unreachable, nop, else, return, drop, select, ref.is_null
		case op >= 0x45 && op <= 0xc4: // numeric, comparison, conversion, sign extension
		case op == 0x02, op == 0x03, op == 0x04: // block, loop, if
			if !r.blockType() {
				return fmt.Errorf("cannot read the block type at byte %d", at)
			}
			depth++
		case op == 0x0b: // end
			depth--
		case op == 0x0c, op == 0x0d, op == 0x10, op == 0xd2: // br, br_if, call, ref.func
			r.u32()
		case op >= 0x20 && op <= 0x26: // local.get/set/tee, global.get/set, table.get/set
			r.u32()
		case op == 0x0e: // br_table
			for range r.count() {
				r.u32()
			}
			r.u32()
		case op == 0x11: // call_indirect: type, table
			r.u32()
			r.u32()
		case op == 0x1c: // select with types
			for range r.count() {
				if !valType(r.byte()) {
					return fmt.Errorf("cannot read select's type at byte %d", at)
				}
			}
		case op >= 0x28 && op <= 0x3e: // loads and stores: align, offset
			r.u32()
			r.u32()
		case op == 0x3f, op == 0x40: // memory.size, memory.grow: memory 0
			r.u32()
		case op == 0x41: // i32.const
			r.skipLEB(5)
		case op == 0x42: // i64.const
			r.skipLEB(10)
		case op == 0x43: // f32.const
			r.skip(4)
		case op == 0x44: // f64.const
			r.skip(8)
		case op == 0xd0: // ref.null: reference type
			r.byte()
		case op == 0xfc:
			if err := r.prefixedFC(tables); err != nil {
				return fmt.Errorf("%w at byte %d", err, at)
			}
		case op == 0xfd:
			if err := r.prefixedSIMD(); err != nil {
				return fmt.Errorf("%w at byte %d", err, at)
			}
		default: // tail calls, exceptions, threads, anything newer
			return fmt.Errorf("instruction 0x%02x at byte %d is not one the host reads (a feature its runtime does not enable)", op, at)
		}
	}
	if r.err != nil || depth != 0 || r.off != len(r.b) {
		return errors.New("cannot read its instructions to their end")
	}
	return nil
}

// prefixedFC reads an instruction of the 0xfc prefix after the prefix: the saturating
// conversions, the bulk memory and the table instructions. table.grow marks its table.
func (r *wasmReader) prefixedFC(tables []wasmTable) error {
	sub := r.u32()
	switch {
	case sub <= 7: // saturating conversions
	case sub == 8: // memory.init: data, memory
		r.u32()
		r.u32()
	case sub == 9, sub == 11, sub == 13, sub == 16, sub == 17: // data.drop, memory.fill, elem.drop, table.size, table.fill
		r.u32()
	case sub == 10, sub == 12, sub == 14: // memory.copy, table.init, table.copy: two indexes
		r.u32()
		r.u32()
	case sub == 15: // table.grow
		idx := r.u32()
		if r.err == nil {
			if uint64(idx) >= uint64(len(tables)) {
				return fmt.Errorf("table.grow of table %d, which the module does not define", idx)
			}
			tables[idx].grown = true
		}
	default:
		return fmt.Errorf("instruction 0xfc %d is not one the host reads", sub)
	}
	return nil
}

// prefixedSIMD reads an instruction of the 0xfd prefix after the prefix: the SIMD
// instructions wazero implements (the fixed-width SIMD of WebAssembly 2.0, not relaxed SIMD).
func (r *wasmReader) prefixedSIMD() error {
	sub := r.u32()
	switch {
	case r.err != nil:
	case sub <= 0x0b, sub == 0x5c, sub == 0x5d: // loads, store, load zero: memarg
		r.u32()
		r.u32()
	case sub == 0x0c, sub == 0x0d: // v128.const, i8x16.shuffle: 16 bytes
		r.skip(16)
	case sub >= 0x15 && sub <= 0x22: // extract and replace lane: lane index
		r.byte()
	case sub >= 0x54 && sub <= 0x5b: // load and store lane: memarg, lane index
		r.u32()
		r.u32()
		r.byte()
	case sub <= 0xff && !simdUnassigned(sub): // no immediate
	default:
		return fmt.Errorf("instruction 0xfd %d is not one the host reads", sub)
	}
	return nil
}

// simdUnassigned reports whether sub, below 256, is a SIMD opcode WebAssembly 2.0 leaves
// unassigned (wazero's list of vector instructions has none of them).
func simdUnassigned(sub uint32) bool {
	switch sub {
	case 0x9a, 0xa2, 0xa5, 0xa6, 0xaf, 0xb0, 0xb2, 0xb3, 0xb4, 0xbb, 0xc2, 0xc5, 0xc6, 0xcf,
		0xd0, 0xd2, 0xd3, 0xd4, 0xe2, 0xee:
		return true
	}
	return false
}
