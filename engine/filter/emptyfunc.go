package filter

import "errors"

// emptyExport reports whether the function module exports as name is defined in the module
// with a body that does nothing: no instructions but its final end (locals may be declared;
// they are zeroed and never read). Calling such a function has no effect the host or the guest
// can see, so the host may leave the call out. Anything this reader does not follow (an
// import re-exported, a section or import kind it does not know, a malformed byte) answers
// false: the function is then called as usual.
//
// wasm is a module wazero compiled, so it is valid; the reader still checks every bound.
func emptyExport(wasm []byte, name string) bool {
	var imported uint32 // functions imported: they come first in the function index space
	var fnIndex uint32
	found, empty := false, false
	eachSection(wasm, func(id byte, sec *wasmReader) bool {
		switch id {
		case 2: // imports
			n, _, _, ok := sec.imports()
			if !ok {
				return false
			}
			imported = n
		case 7: // exports
			for range sec.u32() {
				ename := sec.name()
				kind := sec.byte()
				idx := sec.u32()
				if sec.err != nil {
					return false
				}
				if kind == 0 && ename == name {
					fnIndex, found = idx, true
				}
			}
		case 10: // code: the export section (7) came before it
			bodies, ok := sec.funcBodies()
			empty = ok && found && fnIndex >= imported && uint64(fnIndex-imported) < uint64(len(bodies)) &&
				emptyBody(bodies[fnIndex-imported])
			return false
		}
		return true
	})
	return empty
}

// funcBodies reads the code section: the body of each function the module defines.
func (r *wasmReader) funcBodies() ([][]byte, bool) {
	count := r.u32()
	if r.err != nil || uint64(count) > uint64(len(r.b)-r.off) {
		return nil, false
	}
	bodies := make([][]byte, 0, count)
	for range count {
		size := r.u32()
		if r.err != nil || uint64(r.off)+uint64(size) > uint64(len(r.b)) {
			return nil, false
		}
		bodies = append(bodies, r.b[r.off:r.off+int(size)])
		r.off += int(size)
	}
	return bodies, true
}

// emptyBody reports whether a function body has no instructions but its final end.
func emptyBody(body []byte) bool {
	r := wasmReader{b: body}
	_, ok := r.locals()
	return ok && r.off == len(r.b)-1 && r.b[r.off] == 0x0b
}

// locals reads a function body's local declarations (a count and a type each) and returns
// how many locals they declare.
func (r *wasmReader) locals() (n uint64, ok bool) {
	for range r.u32() {
		n += uint64(r.u32())
		if !valType(r.byte()) {
			return 0, false
		}
	}
	return n, r.err == nil
}

// eachSection calls fn with each section of the module wasm (its id, and a reader over its
// contents) in order, until fn returns false. It reports whether every section was read and
// accepted: false when wasm is not a module, a section's size runs past the end, or fn said
// no.
func eachSection(wasm []byte, fn func(id byte, sec *wasmReader) bool) bool {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return false
	}
	r := wasmReader{b: wasm, off: 8}
	for r.off < len(r.b) {
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(r.off)+uint64(size) > uint64(len(r.b)) {
			return false
		}
		sec := wasmReader{b: r.b[:r.off+int(size)], off: r.off}
		r.off += int(size)
		if !fn(id, &sec) {
			return false
		}
	}
	return true
}

var errWasmShort = errors.New("wasm: truncated")

// wasmReader reads the binary format's primitives; the first failure sticks in err.
type wasmReader struct {
	b   []byte
	off int
	err error
}

func (r *wasmReader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.err = errWasmShort
		return 0
	}
	c := r.b[r.off]
	r.off++
	return c
}

// u32 reads an unsigned LEB128 of at most five bytes.
func (r *wasmReader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		if r.err != nil {
			return 0
		}
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v
		}
	}
	r.err = errWasmShort
	return 0
}

func (r *wasmReader) name() string {
	n := r.u32()
	if r.err != nil || uint64(r.off)+uint64(n) > uint64(len(r.b)) {
		r.err = errWasmShort
		return ""
	}
	s := string(r.b[r.off : r.off+int(n)])
	r.off += int(n)
	return s
}

// limits skips a table's or a memory's limits.
func (r *wasmReader) limits() bool {
	flags := r.byte()
	if flags > 0x07 {
		return false
	}
	r.u32() // min (a 64-bit memory's fits five bytes only when small: a larger one fails here)
	if flags&0x01 != 0 {
		r.u32() // max
	}
	return r.err == nil
}

// imports reads the import section: how many functions and how many tables it imports, and
// whether every import is a function of the host's http_handler or hookwall module
// (boundedGuest).
func (r *wasmReader) imports() (funcs, tables uint32, hostOnly, ok bool) {
	hostOnly = true
	for range r.u32() {
		mod := r.name()
		r.name()
		kind := r.byte()
		hostOnly = hostOnly && kind == 0x00 && (mod == moduleHTTPHandler || mod == moduleHookwall)
		switch kind {
		case 0x00: // function: type index
			r.u32()
			funcs++
		case 0x01: // table: reference type, limits
			r.byte()
			if !r.limits() {
				return 0, 0, false, false
			}
			tables++
		case 0x02: // memory
			if !r.limits() {
				return 0, 0, false, false
			}
		case 0x03: // global: value type, mutability
			if !valType(r.byte()) {
				return 0, 0, false, false
			}
			r.byte()
		default:
			return 0, 0, false, false
		}
		if r.err != nil {
			return 0, 0, false, false
		}
	}
	return funcs, tables, hostOnly, r.err == nil
}

// valType reports whether c is a value type of one byte: i32, i64, f32, f64, v128, funcref,
// externref. A type of more bytes (the GC proposal's) is not followed.
func valType(c byte) bool {
	switch c {
	case 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		return true
	}
	return false
}
