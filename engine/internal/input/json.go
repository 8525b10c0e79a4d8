package input

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
)

// JSONLimits bound the parse of a body into input.request.json. A zero field is the
// config default ([server] max_json_depth, max_json_elements).
type JSONLimits struct {
	MaxDepth    int // nesting levels of arrays and objects
	MaxElements int // values in all: objects, arrays, strings, numbers, true, false, null
}

// The parse also keeps to a budget relative to the body: the values it builds may cost at
// most jsonCostPerByte bytes of heap per body byte, plus jsonCostBase. Real payloads cost a
// few bytes per byte (strings are views of the body); a body made of tiny containers
// ("[[0],[0],…]") costs far more, and is refused before it is built.
const (
	jsonCostPerByte = 32
	jsonCostBase    = 1 << 20
)

// Estimated heap bytes of what the parse builds, at least what OPA's types take
// (TestJSONCostBound measures them); interned terms (small integers, true, false, null,
// empty containers) cost nothing.
const (
	costScalar     = 40  // a string's or number's term (from the slab) and its boxed text
	costArray      = 120 // an ast.Array and its term
	costArrayElem  = 16  // an element's slot and hash
	costObject     = 320 // an ast.Object (its map) and its term
	costObjectElem = 112 // a member: the key's term and boxed text, the element, the map entry
)

// JSONError is a body that is JSON (or starts like it) but over a limit, or that parsers
// read differently. The request is refused with Status before any rule runs; Reason is a
// fixed text, never a part of the body.
type JSONError struct {
	Status int // 413 (too many values, a number too long, over the budget), 415 (encoded, not UTF-8) or 422 (too deep, a key twice, a number out of range, an object or array that is not JSON)
	Reason string
}

func (e *JSONError) Error() string { return "input: " + e.Reason }

var (
	errJSONDepth    = &JSONError{Status: fasthttp.StatusUnprocessableEntity, Reason: "json nested too deep"}
	errJSONElements = &JSONError{Status: fasthttp.StatusRequestEntityTooLarge, Reason: "json has too many values"}
	errJSONBudget   = &JSONError{Status: fasthttp.StatusRequestEntityTooLarge, Reason: "json too costly to build"}
	// errJSONEncoded: a policy that reads input.request.json cannot judge a body sent with a
	// Content-Encoding, whose JSON an upstream that decodes it would read.
	errJSONEncoded = &JSONError{Status: fasthttp.StatusUnsupportedMediaType, Reason: "body has a content-encoding, and the policy reads its json"}
	// errJSONUnicode: JSON text is UTF-8 without a byte order mark (RFC 8259 section 8.1),
	// but some parsers an upstream may use (Python's json.loads) read it after a BOM or in UTF-16/32;
	// a policy that reads input.request.json would find none in such a body, and its rules
	// on it would be passed over.
	errJSONUnicode = &JSONError{Status: fasthttp.StatusUnsupportedMediaType, Reason: "body has a byte order mark or is utf-16 or utf-32, and the policy reads its json"}
	// errJSONNumber: OPA reads a number with big.Float, in time quadratic in its digits (a
	// megabyte of them took seconds, in the parse and in every comparison, which no deadline
	// interrupts), so a number is bounded (maxJSONNumber).
	errJSONNumber = &JSONError{Status: fasthttp.StatusRequestEntityTooLarge, Reason: "json number too long"}
	// errJSONNumberRange: a number whose exponent OPA cannot hold (1e99999999999) is JSON, and
	// other parsers read it (as Infinity): without a value for it, the policy's rules on it
	// would be passed over.
	errJSONNumberRange = &JSONError{Status: fasthttp.StatusUnprocessableEntity, Reason: "json number out of range"}
	// errJSONRepeatedKey: parsers disagree on an object with a key twice (encoding/json,
	// OPA and most keep the last value; gjson, and many streaming readers, the first;
	// serde refuses it), so the policy could judge one value and the upstream act on
	// another. Keys are compared as decoded, so "a" and "\u0061" are the same key, and so
	// are two invalid UTF-8 spellings that both decode to U+FFFD.
	errJSONRepeatedKey = &JSONError{Status: fasthttp.StatusUnprocessableEntity, Reason: "json object has a key twice, and the policy reads its json"}
	// errJSONMalformed: a body that starts as an object or array ("{" or "[" after
	// whitespace) but is not JSON is refused, not taken for a body that is not JSON: lenient
	// parsers an upstream may use read many such bodies ({"amount":Infinity}, a trailing comma,
	// a comment, single quotes, a number too large for OPA, a value with more after it), and
	// the policy's rules on input.request.json would be passed over.
	errJSONMalformed = &JSONError{Status: fasthttp.StatusUnprocessableEntity, Reason: "body starts as a json object or array but is not json, and the policy reads its json"}
	// errJSONSyntax is not refused: a body that is not JSON (and does not start like an
	// object or array) has no input.request.json.
	errJSONSyntax = errors.New("input: not json")
)

// maxJSONNumber bounds a number's text: real payloads' are a few dozen bytes (an amount, an
// id, a time); at this length a number costs OPA microseconds.
const maxJSONNumber = 1000

// jsonScratchMax bounds the parse's stacks kept by a pooled Builder between requests.
const jsonScratchMax = 4096

// parseJSON parses a body into an ast.Value, whatever its Content-Type says (an upstream
// may read JSON without looking at it, and a policy rule on input.request.json must not be
// passed over by a request that declares another type), with no intermediate Go values:
// strings without escapes are views of body (an arena string), other strings are unescaped
// into the arena, and terms come from the slab. It accepts what encoding/json accepts (exactly one value, surrounded by
// whitespace) and builds what ast.InterfaceToValue builds from encoding/json's result
// (FuzzJSON): invalid UTF-8 and lone surrogates become U+FFFD. An object with a key twice is
// refused (errJSONRepeatedKey), and so is a body that starts as an object or array but is not
// JSON (errJSONMalformed). ok is false when the body is not JSON; err is a *JSONError when it
// is over a limit or refused.
func (b *Builder) parseJSON(body string, lim JSONLimits) (v ast.Value, ok bool, err error) {
	if len(body) == 0 {
		return nil, false, nil
	}
	if otherUnicode(body) {
		return nil, false, errJSONUnicode
	}
	if lim.MaxDepth <= 0 {
		lim.MaxDepth = config.DefaultMaxJSONDepth
	}
	if lim.MaxElements <= 0 {
		lim.MaxElements = config.DefaultMaxJSONElements
	}
	p := jsonParser{b: b, s: body, depth: lim.MaxDepth, elems: lim.MaxElements, budget: jsonCostPerByte*len(body) + jsonCostBase,
		terms: b.jsonTerms[:0], pairs: b.jsonPairs[:0]}
	t := p.value()
	if p.err == nil {
		p.ws()
		if p.i != len(p.s) {
			p.err = errJSONSyntax
		}
	}
	// The stacks hold terms of this value: clear what was used, so a pooled Builder keeps
	// no value alive, and drop stacks a large body grew.
	clear(p.terms[:cap(p.terms)])
	clear(p.pairs[:cap(p.pairs)])
	b.jsonTerms, b.jsonPairs = p.terms[:0], p.pairs[:0]
	if cap(p.terms) > jsonScratchMax {
		b.jsonTerms = nil
	}
	if cap(p.pairs) > jsonScratchMax {
		b.jsonPairs = nil
	}
	err = p.err
	if err == errJSONNumberRange && !json.Valid(unsafeBytes(body)) {
		// The parse stopped at the number: the rest decides whether the body is JSON at all.
		err = errJSONSyntax
	}
	switch {
	case err == errJSONSyntax && startsAsContainer(body):
		return nil, false, errJSONMalformed
	case err == errJSONSyntax:
		return nil, false, nil
	case err != nil:
		return nil, false, err
	}
	return t.Value, true, nil
}

// startsAsContainer reports whether body's first byte after JSON whitespace opens an object
// or an array.
func startsAsContainer(body string) bool {
	body = strings.TrimLeft(body, " \t\n\r")
	return body != "" && (body[0] == '{' || body[0] == '[')
}

// otherUnicode reports whether body starts with a byte order mark (UTF-8, UTF-16 or UTF-32),
// or as JSON text in UTF-16 or UTF-32 does without one: its first character is ASCII, so one
// of its first two bytes is zero.
func otherUnicode(body string) bool {
	for _, bom := range []string{"\xef\xbb\xbf", "\xfe\xff", "\xff\xfe", "\x00\x00\xfe\xff"} {
		if strings.HasPrefix(body, bom) {
			return true
		}
	}
	return len(body) >= 2 && (body[0] == 0 || body[1] == 0)
}

type jsonParser struct {
	b      *Builder
	s      string
	i      int
	depth  int // levels left
	elems  int // values left
	budget int // heap bytes left
	err    error
	terms  []*ast.Term    // pending array elements, a stack shared by every level
	pairs  [][2]*ast.Term // pending object members, likewise
}

func (p *jsonParser) fail(err error) *ast.Term {
	if p.err == nil {
		p.err = err
	}
	return nil
}

// spend takes n bytes from the budget, false when it is exhausted.
func (p *jsonParser) spend(n int) bool {
	p.budget -= n
	if p.budget < 0 {
		p.fail(errJSONBudget)
		return false
	}
	return true
}

func (p *jsonParser) ws() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// value parses one value after optional whitespace.
func (p *jsonParser) value() *ast.Term {
	p.ws()
	if p.i >= len(p.s) {
		return p.fail(errJSONSyntax)
	}
	if p.elems--; p.elems < 0 {
		return p.fail(errJSONElements)
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		s, ok := p.str()
		if !ok || !p.spend(costScalar) {
			return nil
		}
		return p.b.term(ast.String(s))
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case strings.HasPrefix(p.s[p.i:], "true"):
		p.i += 4
		return ast.InternedTerm(true)
	case strings.HasPrefix(p.s[p.i:], "false"):
		p.i += 5
		return ast.InternedTerm(false)
	case strings.HasPrefix(p.s[p.i:], "null"):
		p.i += 4
		return ast.InternedNullTerm
	}
	return p.fail(errJSONSyntax)
}

func (p *jsonParser) enter() bool {
	if p.depth--; p.depth < 0 {
		p.fail(errJSONDepth)
		return false
	}
	p.i++ // the opening bracket
	p.ws()
	return true
}

func (p *jsonParser) array() *ast.Term {
	if !p.enter() {
		return nil
	}
	defer func() { p.depth++ }()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		p.i++
		return ast.InternedEmptyArray
	}
	start := len(p.terms)
	for {
		t := p.value()
		if t == nil {
			return nil
		}
		p.terms = append(p.terms, t)
		p.ws()
		if p.i >= len(p.s) {
			return p.fail(errJSONSyntax)
		}
		c := p.s[p.i]
		p.i++
		if c == ']' {
			break
		}
		if c != ',' {
			return p.fail(errJSONSyntax)
		}
	}
	n := len(p.terms) - start
	if !p.spend(costArray + n*costArrayElem) {
		return nil
	}
	elems := make([]*ast.Term, n) // the array keeps it: a copy of the stack's top
	copy(elems, p.terms[start:])
	p.terms = p.terms[:start]
	return p.b.term(ast.NewArray(elems...))
}

func (p *jsonParser) object() *ast.Term {
	if !p.enter() {
		return nil
	}
	defer func() { p.depth++ }()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return ast.InternedEmptyObject
	}
	start := len(p.pairs)
	for {
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return p.fail(errJSONSyntax)
		}
		k, ok := p.str()
		if !ok {
			return nil
		}
		p.ws()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return p.fail(errJSONSyntax)
		}
		p.i++
		v := p.value()
		if v == nil {
			return nil
		}
		p.pairs = append(p.pairs, [2]*ast.Term{p.b.term(ast.String(k)), v})
		p.ws()
		if p.i >= len(p.s) {
			return p.fail(errJSONSyntax)
		}
		c := p.s[p.i]
		p.i++
		if c == '}' {
			break
		}
		if c != ',' {
			return p.fail(errJSONSyntax)
		}
		p.ws()
	}
	n := len(p.pairs) - start
	if !p.spend(costObject + n*costObjectElem) {
		return nil
	}
	obj := ast.NewObjectWithCapacity(n)
	for _, kv := range p.pairs[start:] {
		obj.Insert(kv[0], kv[1])
	}
	p.pairs = p.pairs[:start]
	if obj.Len() != n { // Insert replaced a member: a key came twice
		return p.fail(errJSONRepeatedKey)
	}
	return p.b.term(obj)
}

// number reads an RFC 8259 number; its term's text is a view of the body.
func (p *jsonParser) number() *ast.Term {
	s, start := p.s, p.i
	i := start
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = digits(s, i)
	default:
		return p.fail(errJSONSyntax)
	}
	if i < len(s) && s[i] == '.' {
		if j := digits(s, i+1); j > i+1 {
			i = j
		} else {
			return p.fail(errJSONSyntax)
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if j := digits(s, i); j > i {
			i = j
		} else {
			return p.fail(errJSONSyntax)
		}
	}
	p.i = i
	text := s[start:i]
	if len(text) > maxJSONNumber {
		return p.fail(errJSONNumber)
	}
	if t := ast.InternedIntNumberTermFromString(text); t != nil {
		return t
	}
	n, err := ast.NumberChecked(text)
	if err != nil {
		return p.fail(errJSONNumberRange)
	}
	if !p.spend(costScalar) {
		return nil
	}
	return p.b.term(n)
}

func digits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// str reads a string at p.i (its opening quote) and returns its value, unescaped as
// encoding/json unescapes it.
func (p *jsonParser) str() (string, bool) {
	s := p.s
	start := p.i + 1
	i := start
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"':
			p.i = i + 1
			return s[start:i], true // a view of the body
		case c == '\\':
			return p.unescape(start)
		case c < ' ':
			p.fail(errJSONSyntax)
			return "", false
		case c < utf8.RuneSelf:
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				return p.unescape(start)
			}
			i += size
		}
	}
	p.fail(errJSONSyntax)
	return "", false
}

// unescape is str's slow path: escapes or invalid UTF-8, decoded into the arena.
func (p *jsonParser) unescape(start int) (string, bool) {
	s := p.s
	buf := p.b.lower[:0]
	defer func() { p.b.lower = buf[:0] }()
	for i := start; i < len(s); {
		c := s[i]
		switch {
		case c == '"':
			p.i = i + 1
			if !p.spend(len(buf)) {
				return "", false
			}
			return p.b.String(buf), true
		case c < ' ':
			p.fail(errJSONSyntax)
			return "", false
		case c == '\\':
			if i+1 >= len(s) {
				p.fail(errJSONSyntax)
				return "", false
			}
			e := s[i+1]
			i += 2
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r := hex4(s, i)
				if r < 0 {
					p.fail(errJSONSyntax)
					return "", false
				}
				i += 4
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+1 < len(s) && s[i] == '\\' && s[i+1] == 'u' {
						r2 = hex4(s, i+2)
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r = d
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				p.fail(errJSONSyntax)
				return "", false
			}
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			buf = utf8.AppendRune(buf, r) // an invalid byte is U+FFFD
		}
	}
	p.fail(errJSONSyntax)
	return "", false
}

// hex4 decodes the 4 hex digits at s[i:], -1 when they are not.
func hex4(s string, i int) rune {
	if i+4 > len(s) {
		return -1
	}
	var r rune
	for _, c := range []byte(s[i : i+4]) {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
