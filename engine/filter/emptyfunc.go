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
	r := wasmReader{b: wasm}
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return false
	}
	r.off = 8
	var imported uint32 // functions imported: they come first in the function index space
	var fnIndex uint32
	found := false
	for r.off < len(r.b) && r.err == nil {
		id := r.byte()
		size := r.u32()
		if r.err != nil || uint64(r.off)+uint64(size) > uint64(len(r.b)) {
			return false
		}
		sec := wasmReader{b: r.b[:r.off+int(size)], off: r.off}
		r.off += int(size)
		switch id {
		case 2: // imports
			n, ok := sec.countFuncImports()
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
			if !found || fnIndex < imported {
				return false
			}
			want := fnIndex - imported
			count := sec.u32()
			if sec.err != nil || want >= count {
				return false
			}
			for i := uint32(0); i < count; i++ {
				size := sec.u32()
				if sec.err != nil || uint64(sec.off)+uint64(size) > uint64(len(sec.b)) {
					return false
				}
				if i != want {
					sec.off += int(size)
					continue
				}
				body := wasmReader{b: sec.b[:sec.off+int(size)], off: sec.off}
				for range body.u32() { // local declarations: a count and a type each
					body.u32()
					if !valType(body.byte()) {
						return false
					}
				}
				return body.err == nil && body.off == len(body.b)-1 && body.b[body.off] == 0x0b
			}
			return false
		}
	}
	return false
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

// countFuncImports reads the import section and counts its function imports.
func (r *wasmReader) countFuncImports() (uint32, bool) {
	var funcs uint32
	for range r.u32() {
		r.name()
		r.name()
		switch r.byte() {
		case 0x00: // function: type index
			r.u32()
			funcs++
		case 0x01: // table: reference type, limits
			r.byte()
			if !r.limits() {
				return 0, false
			}
		case 0x02: // memory
			if !r.limits() {
				return 0, false
			}
		case 0x03: // global: value type, mutability
			if !valType(r.byte()) {
				return 0, false
			}
			r.byte()
		default:
			return 0, false
		}
		if r.err != nil {
			return 0, false
		}
	}
	return funcs, r.err == nil
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
