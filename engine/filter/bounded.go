package filter

// boundedSteps is the most instructions one call into a bounded guest may execute (its own
// and those of the functions it calls, a host call counting as one): about a microsecond of
// compiled code a thousand steps, so a bounded call cannot outrun a deadline of milliseconds
// by more than the host calls it makes, each of which checks the deadline first.
const boundedSteps = 1 << 14

// boundedGuest reports whether every call into the module provably ends within boundedSteps
// instructions (a declared local counting as one): no function has a loop (so every branch jumps forward and each instruction
// runs at most once a call of its function), no function reaches itself through direct calls,
// none calls indirectly or by tail call, grows memory or runs a bulk memory or table
// instruction (whose cost is the length it is given), and the module imports functions from
// the http_handler and hookwall modules only (the host's, which check the call's deadline
// before they work: callingInstance). Such a guest needs no interrupt checks in its code, nor
// wazero's watcher goroutine per call, to stay within its deadline.
//
// Anything this reader does not follow (a section, instruction or import it does not know,
// a malformed byte) answers false: the guest is then compiled with the interrupt checks, as
// every other one.
func boundedGuest(wasm []byte) bool {
	var imported uint32
	var bodies [][]byte
	read := eachSection(wasm, func(id byte, sec *wasmReader) bool {
		switch id {
		case 0, 1, 3, 4, 5, 6, 7, 8, 9, 11, 12: // custom, type, function, table, memory, global, export, start, element, data, data count
		case 2:
			n, _, hostOnly, ok := sec.imports()
			if !ok || !hostOnly {
				return false
			}
			imported = n
		case 10:
			var ok bool
			if bodies, ok = sec.funcBodies(); !ok {
				return false
			}
		default:
			return false
		}
		return true
	})
	if !read {
		return false
	}
	fns := make([]boundedFunc, len(bodies))
	for i, b := range bodies {
		if !fns[i].read(b) {
			return false
		}
	}
	steps := make([]uint32, len(fns))
	state := make([]uint8, len(fns)) // 0 unseen, 1 on the current path, 2 counted
	var count func(i uint32) bool
	count = func(i uint32) bool {
		switch state[i] {
		case 1:
			return false // a cycle of direct calls
		case 2:
			return true
		}
		state[i] = 1
		n := uint64(fns[i].steps)
		for _, c := range fns[i].calls {
			if c < imported {
				continue // a host call: one step, counted with the instruction
			}
			c -= imported
			if c >= uint32(len(fns)) || !count(c) {
				return false
			}
			if n += uint64(steps[c]); n > boundedSteps {
				return false
			}
		}
		if n > boundedSteps {
			return false
		}
		steps[i], state[i] = uint32(n), 2
		return true
	}
	for i := range fns {
		if !count(uint32(i)) {
			return false
		}
	}
	return true
}

// boundedFunc is one function body as boundedGuest reads it: how many instructions it has,
// and the function indexes of its direct calls, one per call instruction.
type boundedFunc struct {
	steps uint32
	calls []uint32
}

// read decodes body (locals, then instructions up to its final end) and reports whether
// every instruction is one boundedGuest allows: the core instructions without loop,
// call_indirect, tail calls, memory.grow and the bulk memory and table instructions, plus
// the sign-extension and saturating conversions. A declared local counts as a step.
func (f *boundedFunc) read(body []byte) bool {
	r := wasmReader{b: body}
	// Each local costs a step: the interpreter sets every one to zero on each call.
	locals, ok := r.locals()
	if !ok || locals > boundedSteps {
		return false
	}
	f.steps = uint32(locals)
	depth := 1 // the body is a block: its final end closes it
	for r.err == nil && depth > 0 {
		op := r.byte()
		f.steps++
		switch {
		case op == 0x00, op == 0x01, op == 0x0f, op == 0x1a, op == 0x1b, op == 0xd1: // unreachable, nop, return, drop, select, ref.is_null
		case op >= 0x45 && op <= 0xc4: // numeric, comparison, conversion and sign-extension: no immediate
		case op == 0x02, op == 0x04: // block, if
			if !r.blockType() {
				return false
			}
			depth++
		case op == 0x05: // else
		case op == 0x0b: // end
			depth--
		case op == 0x0c, op == 0x0d: // br, br_if
			r.u32()
		case op == 0x0e: // br_table
			for range r.count() {
				r.u32()
			}
			r.u32()
		case op == 0x10: // call
			f.calls = append(f.calls, r.u32())
		case op == 0x1c: // select with types
			for range r.u32() {
				if !valType(r.byte()) {
					return false
				}
			}
		case op >= 0x20 && op <= 0x26: // local.get/set/tee, global.get/set, table.get/set
			r.u32()
		case op >= 0x28 && op <= 0x3e: // loads and stores
			if align := r.u32(); align&0x40 != 0 { // a memory index follows (multiple memories)
				r.u32()
			}
			r.u32() // offset
		case op == 0x3f: // memory.size
			r.u32()
		case op == 0x41: // i32.const
			r.skipLEB(5)
		case op == 0x42: // i64.const
			r.skipLEB(10)
		case op == 0x43: // f32.const
			r.skip(4)
		case op == 0x44: // f64.const
			r.skip(8)
		case op == 0xd0: // ref.null
			r.byte()
		case op == 0xd2: // ref.func
			r.u32()
		case op == 0xfc: // saturating conversions only
			if sub := r.u32(); sub > 7 {
				return false
			}
		default: // loop, call_indirect, tail calls, memory.grow, exceptions, SIMD, anything newer
			return false
		}
	}
	return r.err == nil && depth == 0 && r.off == len(r.b)
}

// blockType skips a block type: empty, a value type, or a type index (a signed LEB128 of
// 33 bits, non-negative).
func (r *wasmReader) blockType() bool {
	if r.off >= len(r.b) {
		r.err = errWasmShort
		return false
	}
	if c := r.b[r.off]; c == 0x40 || valType(c) {
		r.off++
		return true
	}
	r.skipLEB(5)
	return r.err == nil
}

// count reads the number of items that follow: each takes a byte at least, so a number
// larger than the bytes left is malformed. A loop whose body does not stop at the first
// error (br_table's targets) would otherwise run four billion times over nothing.
func (r *wasmReader) count() uint32 {
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(len(r.b)-r.off) {
		r.err = errWasmShort
		return 0
	}
	return n
}

// skipLEB skips a LEB128 number of at most n bytes.
func (r *wasmReader) skipLEB(n int) {
	for range n {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.err = errWasmShort
}

// skip skips n bytes.
func (r *wasmReader) skip(n int) {
	if r.err != nil || r.off+n > len(r.b) {
		r.err = errWasmShort
		return
	}
	r.off += n
}
