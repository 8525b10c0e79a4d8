package oauth

import (
	"encoding/json"
	"errors"
	"strings"
	"unicode/utf8"
)

// parseClaims parses a JSON object of claims into Go values (map[string]any, []any, string,
// json.Number, bool, nil), as encoding/json with UseNumber would, but without reflection:
// this runs on every token. It is stricter: invalid UTF-8, a duplicate member name in any
// object (RFC 7519 section 4 allows refusing them) and nesting deeper than maxClaimsDepth are errors.
func parseClaims(b []byte) (map[string]any, error) {
	if !utf8.Valid(b) {
		return nil, errBadJSON
	}
	p := jsonParser{b: b}
	p.space()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return nil, errBadJSON
	}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i != len(p.b) {
		return nil, errBadJSON
	}
	return v.(map[string]any), nil
}

var errBadJSON = errors.New("malformed JSON")

const maxClaimsDepth = 32

type jsonParser struct {
	b []byte
	i int
}

func (p *jsonParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if depth > maxClaimsDepth {
		return nil, errBadJSON
	}
	p.space()
	if p.i >= len(p.b) {
		return nil, errBadJSON
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		m := map[string]any{}
		p.space()
		if p.i < len(p.b) && p.b[p.i] == '}' {
			p.i++
			return m, nil
		}
		for {
			p.space()
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			if _, dup := m[k]; dup {
				return nil, errBadJSON
			}
			p.space()
			if p.i >= len(p.b) || p.b[p.i] != ':' {
				return nil, errBadJSON
			}
			p.i++
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			m[k] = v
			if done, err := p.next('}'); err != nil || done {
				return m, err
			}
		}
	case c == '[':
		p.i++
		a := []any{}
		p.space()
		if p.i < len(p.b) && p.b[p.i] == ']' {
			p.i++
			return a, nil
		}
		for {
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
			if done, err := p.next(']'); err != nil || done {
				return a, err
			}
		}
	case c == '"':
		return p.str()
	case c == 't':
		return true, p.lit("true")
	case c == 'f':
		return false, p.lit("false")
	case c == 'n':
		return nil, p.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.num()
	}
	return nil, errBadJSON
}

// next consumes a ',' (done false) or the closing byte (done true).
func (p *jsonParser) next(closing byte) (bool, error) {
	p.space()
	if p.i >= len(p.b) {
		return false, errBadJSON
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		return false, nil
	case closing:
		p.i++
		return true, nil
	}
	return false, errBadJSON
}

func (p *jsonParser) lit(s string) error {
	if !strings.HasPrefix(string(p.b[p.i:min(len(p.b), p.i+len(s))]), s) {
		return errBadJSON
	}
	p.i += len(s)
	return nil
}

// str reads a string; one without escapes is copied as it is, one with escapes is decoded
// by encoding/json.
func (p *jsonParser) str() (string, error) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return "", errBadJSON
	}
	start := p.i
	p.i++
	escaped := false
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			if !escaped {
				return string(p.b[start+1 : p.i-1]), nil
			}
			var s string
			if json.Unmarshal(p.b[start:p.i], &s) != nil {
				return "", errBadJSON
			}
			return s, nil
		case c == '\\':
			escaped = true
			p.i += 2
		case c < 0x20:
			return "", errBadJSON
		default:
			p.i++
		}
	}
	return "", errBadJSON
}

// num reads a number in JSON's grammar, kept as its text.
func (p *jsonParser) num() (json.Number, error) {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	intStart := p.i
	if n := digits(); n == 0 || (n > 1 && p.b[intStart] == '0') {
		return "", errBadJSON
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return "", errBadJSON
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return "", errBadJSON
		}
	}
	return json.Number(p.b[start:p.i]), nil
}
