package main

import (
	"encoding/binary"
	"math/bits"
)

// scanner checks a JSON text (RFC 8259) fed in chunks of any size, without
// building it: memory is the container stack, one byte per nesting level,
// whatever the input. It stops at the first violation.
//
// Like encoding/json.Valid it does not check that strings are valid UTF-8.
//
// # Notes
//
// It is a table-driven automaton because of what Go's wasm code costs: every
// branch between basic blocks goes through the function's dispatch loop,
// and with a deadline wazero checks for interruption on each of them. So
// the common byte costs one table lookup, and the rest (containers, keys,
// entering a string) is handled by a few actions; runs of plain string bytes
// are skipped eight at a time.
type scanner struct {
	maxDepth, maxKeys int
	maxBytes          int64

	state  uint8
	stack  []byte // '{' or '[' per open container
	keys   int
	n      int64
	result result
}

// result is the verdict; resultOK until a limit or the grammar is violated.
type result uint8

const (
	resultOK result = iota
	resultTooBig
	resultTooDeep
	resultTooManyKeys
	resultInvalid
)

func (r result) String() string {
	switch r {
	case resultOK:
		return "ok"
	case resultTooBig:
		return "too_big"
	case resultTooDeep:
		return "too_deep"
	case resultTooManyKeys:
		return "too_many_keys"
	}
	return "invalid"
}

func newScanner(maxDepth, maxKeys int, maxBytes int64) *scanner {
	return &scanner{maxDepth: maxDepth, maxKeys: maxKeys, maxBytes: maxBytes, stack: make([]byte, 0, maxDepth)}
}

// reset prepares s for a new document, keeping its stack's memory.
func (s *scanner) reset() {
	s.stack = s.stack[:0]
	s.state, s.keys, s.n, s.result = sValue+ctxTop, 0, 0, resultOK
}

// Contexts: where a value sits. The automaton tracks it in its states so
// that ',' and the closers are checked by the table.
const (
	ctxTop = iota
	ctxObj
	ctxArr
	numCtx
)

// String kinds: a value string in each context, or an object key.
const (
	kindKey  = numCtx
	numKinds = numCtx + 1
)

// States. Families take a context or kind offset.
const (
	sValue    = 0                         // + ctx: a value must follow
	sArrFirst = sValue + numCtx           // after '[': a value or ']'
	sObjFirst = sArrFirst + 1             // after '{': a key or '}'
	sObjKey   = sObjFirst + 1             // after ',' in an object: a key
	sColon    = sObjKey + 1               // after a key
	sAfter    = sColon + 1                // + ctx: after a value
	sString   = sAfter + numCtx           // + kind: inside a string
	sEscape   = sString + numKinds        // + kind: after '\'
	sHex      = sEscape + numKinds        // + kind*4 + (digits left - 1): in the four hex digits of a \u escape
	sNumber   = sHex + numKinds*4         // + ctx*numberStates + n
	sLiteral  = sNumber + numCtx*nStates  // + ctx*literalStates + n
	numStates = sLiteral + numCtx*lStates // 88
)

// Number states, in order: after '-', after a leading 0, integer digits,
// after '.', fraction digits, after 'e', after the exponent sign, exponent
// digits.
const (
	nMinus = iota
	nZero
	nInt
	nDot
	nFrac
	nExp
	nExpSign
	nExpDigits
	nStates
)

// literals are the letters that follow the first one of true, false, null;
// their states are numbered in this order.
var literals = [...]string{"rue", "alse", "ull"}

const lStates = 3 + 4 + 3

// Actions: table entries at or above aFirst are handled by code.
const (
	aFirst   = 0x80
	aErr     = aFirst + iota - 1 // the grammar is violated
	aPushObj                     // '{' starts an object
	aPushArr                     // '[' starts an array
	aPop                         // a valid closer ends the innermost container
	aKey                         // '"' starts a key: count it
	aString                      // + kind: enter (or resume) a string
)

// Byte classes.
const (
	cOther     = iota // plain inside strings, invalid outside
	cSpace            // ' '
	cWS               // \t \n \r: whitespace outside strings, invalid inside
	cCtl              // other control characters: invalid everywhere
	cQuote            // "
	cBackslash        // \
	cSlash            // /
	cLBrace           // {
	cRBrace           // }
	cLBrack           // [
	cRBrack           // ]
	cComma            // ,
	cColon            // :
	cMinus            // -
	cPlus             // +
	cZero             // 0
	cDigit            // 1-9
	cDot              // .
	cLowE             // e: hex, exponent, literal letter
	cUpE              // E: hex, exponent
	cA                // a: hex, literal letter
	cB                // b: hex, escape
	cHex              // c d A B C D F: hex only
	cF                // f: hex, escape, literal start
	cL                // l
	cN                // n: escape, literal start
	cR                // r: escape, literal letter
	cS                // s
	cT                // t: escape, literal start
	cU                // u: escape, literal letter
	numClasses        // at most 1<<classBits
)

// classOf and trans are the automaton; built once, read-only after.
var classOf, trans = buildTables()

// The table is indexed by state<<5 | class; the mask in write keeps every
// index provably in range, so the hot loop has no bounds check.
const (
	classBits = 5
	tableSize = 256 << classBits
)

func buildTables() (cls [256]uint8, tr [tableSize]uint8) {
	for c := range 0x20 {
		cls[c] = cCtl
	}
	cls['\t'], cls['\n'], cls['\r'], cls[' '] = cWS, cWS, cWS, cSpace
	for c, k := range map[byte]uint8{'"': cQuote, '\\': cBackslash, '/': cSlash, '{': cLBrace, '}': cRBrace,
		'[': cLBrack, ']': cRBrack, ',': cComma, ':': cColon, '-': cMinus, '+': cPlus, '0': cZero, '.': cDot,
		'e': cLowE, 'E': cUpE, 'a': cA, 'b': cB, 'c': cHex, 'd': cHex, 'A': cHex, 'B': cHex, 'C': cHex,
		'D': cHex, 'F': cHex, 'f': cF, 'l': cL, 'n': cN, 'r': cR, 's': cS, 't': cT, 'u': cU} {
		cls[c] = k
	}
	for c := '1'; c <= '9'; c++ {
		cls[c] = cDigit
	}
	classes := func(s string) []uint8 {
		var out []uint8
		for i := range len(s) {
			out = append(out, cls[s[i]])
		}
		return out
	}
	digits := []uint8{cZero, cDigit}
	hex := []uint8{cZero, cDigit, cLowE, cUpE, cA, cB, cHex, cF}
	ws := []uint8{cSpace, cWS}

	for i := range tr {
		tr[i] = aErr
	}
	set := func(st int, cs []uint8, to uint8) {
		for _, c := range cs {
			tr[st<<classBits|int(c)] = to
		}
	}
	// after is where a value in ctx ends on byte class c: the effect of c
	// right after the value (used by numbers, which end on the next byte).
	after := func(ctx int) map[uint8]uint8 {
		m := map[uint8]uint8{cSpace: uint8(sAfter + ctx), cWS: uint8(sAfter + ctx)}
		switch ctx {
		case ctxObj:
			m[cComma], m[cRBrace] = sObjKey, aPop
		case ctxArr:
			m[cComma], m[cRBrack] = sValue+ctxArr, aPop
		}
		return m
	}

	for ctx := range numCtx {
		// Where a value in ctx can start.
		starts := []int{sValue + ctx}
		if ctx == ctxArr {
			starts = append(starts, sArrFirst)
		}
		num := sNumber + ctx*nStates
		lit := sLiteral + ctx*lStates
		for _, st := range starts {
			set(st, ws, uint8(st))
			set(st, []uint8{cQuote}, uint8(aString+ctx))
			set(st, []uint8{cLBrace}, aPushObj)
			set(st, []uint8{cLBrack}, aPushArr)
			set(st, []uint8{cMinus}, uint8(num+nMinus))
			set(st, []uint8{cZero}, uint8(num+nZero))
			set(st, []uint8{cDigit}, uint8(num+nInt))
			set(st, []uint8{cT}, uint8(lit))
			set(st, []uint8{cF}, uint8(lit+3))
			set(st, []uint8{cN}, uint8(lit+7))
		}
		for c, to := range after(ctx) {
			set(sAfter+ctx, []uint8{c}, to)
		}
		// Numbers.
		set(num+nMinus, []uint8{cZero}, uint8(num+nZero))
		set(num+nMinus, []uint8{cDigit}, uint8(num+nInt))
		set(num+nInt, digits, uint8(num+nInt))
		set(num+nDot, digits, uint8(num+nFrac))
		set(num+nFrac, digits, uint8(num+nFrac))
		set(num+nExp, []uint8{cPlus, cMinus}, uint8(num+nExpSign))
		set(num+nExp, digits, uint8(num+nExpDigits))
		set(num+nExpSign, digits, uint8(num+nExpDigits))
		set(num+nExpDigits, digits, uint8(num+nExpDigits))
		for _, n := range []int{nZero, nInt} {
			set(num+n, []uint8{cDot}, uint8(num+nDot))
		}
		for _, n := range []int{nZero, nInt, nFrac} {
			set(num+n, []uint8{cLowE, cUpE}, uint8(num+nExp))
		}
		for _, n := range []int{nZero, nInt, nFrac, nExpDigits} {
			for c, to := range after(ctx) {
				set(num+n, []uint8{c}, to)
			}
		}
		// Literals: each letter leads to the next; the last one ends the value.
		st := lit
		for _, rest := range literals {
			for j, c := range classes(rest) {
				to := uint8(st + 1)
				if j == len(rest)-1 {
					to = uint8(sAfter + ctx)
				}
				set(st, []uint8{c}, to)
				st++
			}
		}
	}
	// Top level: only whitespace after the value.
	// Objects: keys and colons.
	set(sObjFirst, ws, sObjFirst)
	set(sObjFirst, []uint8{cQuote}, aKey)
	set(sObjFirst, []uint8{cRBrace}, aPop)
	set(sObjKey, ws, sObjKey)
	set(sObjKey, []uint8{cQuote}, aKey)
	set(sColon, ws, sColon)
	set(sColon, []uint8{cColon}, sValue+ctxObj)
	set(sArrFirst, []uint8{cRBrack}, aPop)

	// Strings. A plain byte in a string state only happens at the start of
	// a chunk: resume the fast skip there.
	for k := range numKinds {
		end := uint8(sAfter + k)
		if k == kindKey {
			end = sColon
		}
		for c := range numClasses {
			switch c {
			case cWS, cCtl:
			case cQuote:
				tr[(sString+k)<<classBits|c] = end
			case cBackslash:
				tr[(sString+k)<<classBits|c] = uint8(sEscape + k)
			default:
				tr[(sString+k)<<classBits|c] = uint8(aString + k)
			}
		}
		set(sEscape+k, []uint8{cQuote, cBackslash, cSlash, cB, cF, cN, cR, cT}, uint8(aString+k))
		set(sEscape+k, []uint8{cU}, uint8(sHex+k*4+3))
		for left := 3; left >= 1; left-- {
			set(sHex+k*4+left, hex, uint8(sHex+k*4+left-1))
		}
		set(sHex+k*4, hex, uint8(aString+k))
	}
	return cls, tr
}

// write feeds the next chunk and returns the verdict so far; once it is not
// resultOK, further input is ignored.
func (s *scanner) write(p []byte) result {
	if s.result != resultOK {
		return s.result
	}
	s.n += int64(len(p))
	if s.n > s.maxBytes {
		return s.fail(resultTooBig)
	}
	st, stack, r := s.state, s.stack, resultOK
loop:
	for i := 0; i < len(p); i++ {
		nx := trans[(int(st)<<classBits|int(classOf[p[i]]))&(tableSize-1)]
		if nx < aFirst {
			st = nx
			continue
		}
		switch nx {
		case aErr:
			r = resultInvalid
			break loop
		case aPushObj, aPushArr:
			if len(stack) >= s.maxDepth {
				r = resultTooDeep
				break loop
			}
			stack = append(stack, p[i])
			if st = sObjFirst; nx == aPushArr {
				st = sArrFirst
			}
		case aPop:
			stack = stack[:len(stack)-1]
			st = sAfter + ctxTop
			if len(stack) > 0 {
				if st = sAfter + ctxObj; stack[len(stack)-1] == '[' {
					st = sAfter + ctxArr
				}
			}
		case aKey:
			if s.keys++; s.keys > s.maxKeys {
				r = resultTooManyKeys
				break loop
			}
			nx = aString + kindKey
			fallthrough
		default:
			// Enter or resume a string: skip its plain bytes, eight at a
			// time; the lowest bit of the mask marks the first byte that
			// needs the table. The loop's i++ lands on it. p[i] is spent
			// (the opening quote, or the end of an escape) unless the
			// chunk started inside the string.
			j := i + 1
			if st >= sString && st < sString+numKinds {
				j = i
			}
			st = sString + (nx - aString)
			for j+8 <= len(p) {
				if m := special(binary.LittleEndian.Uint64(p[j:])); m != 0 {
					j += bits.TrailingZeros64(m) / 8
					goto found
				}
				j += 8
			}
			for j < len(p) && classOf[p[j]] != cQuote && classOf[p[j]] != cBackslash && p[j] >= 0x20 {
				j++
			}
		found:
			i = j - 1
		}
	}
	s.state, s.stack = st, stack
	if r != resultOK {
		return s.fail(r)
	}
	return resultOK
}

// close ends the input and returns the final verdict.
func (s *scanner) close() result {
	if s.result != resultOK {
		return s.result
	}
	if len(s.stack) == 0 {
		switch s.state {
		case sAfter + ctxTop, sNumber + nZero, sNumber + nInt, sNumber + nFrac, sNumber + nExpDigits:
			return resultOK // sNumber + n: a number of the top context
		}
	}
	return s.fail(resultInvalid)
}

func (s *scanner) fail(r result) result {
	s.result = r
	return r
}

// SWAR constants: one in each byte, and each byte's top bit.
const (
	ones = 0x0101010101010101
	tops = 0x8080808080808080
)

// special returns a mask whose lowest set bit is the top bit of the first
// byte of the little-endian word v that is '"', '\\' or a control
// character (the bytes that end a run of plain string bytes), or 0 when
// there is none. Each term is the has-zero-byte test: a borrow can set
// bits above a match, never below it, so the lowest bit is exact.
func special(v uint64) uint64 {
	q := v ^ (ones * '"')
	b := v ^ (ones * '\\')
	return ((q-ones)&^q | (b-ones)&^b | (v-ones*0x20)&^v) & tops
}
