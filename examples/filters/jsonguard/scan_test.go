package main

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strings"
	"testing"
)

func scanAll(s *scanner, doc string, chunkSize int) result {
	s.reset()
	for i := 0; i < len(doc); i += chunkSize {
		if r := s.write([]byte(doc[i:min(i+chunkSize, len(doc))])); r != resultOK {
			return r
		}
	}
	return s.close()
}

func TestScannerGrammar(t *testing.T) {
	valid := []string{
		`{}`, `[]`, `0`, `-0`, `1.5e+10`, `-12.25E-3`, `"x"`, `true`, `false`, `null`,
		` {"a" : [1, 2.0, {"b":null}], "c":"\u00e9\n\"q\""} `, `[[],{}]`, "\t[\r\n]\n",
		`"é漢字"`, `{"":""}`, `[0,-1,2e3]`, `123`, `[1 ,2 ]`,
		`"a\\b"`, `"\\"`, `"\"\\\/\b\f\n\r\t\u00e9\uABCD"`, `{"k\"":"v\\"}`, "\"a b\x7f\"",
		`{"a":true,"b":false,"c":null,"d":[true,false,null]}`, `[-0.0e-0,1E+2,0.5]`,
	}
	invalid := []string{
		``, ` `, `{`, `[`, `]`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[,1]`, `{,}`, `{1:2}`,
		`01`, `-`, `- 1`, `1.`, `1. 5`, `.5`, `1e`, `1e+`, `+1`, `0x10`, `tru`, `truex`, `nul`,
		`"abc`, `"a\x"`, `"\u12g4"`, "\"a\x01b\"", `{} {}`, `1 2`, `[1]]`, `{"a":1}}`, `[}`, `{]`,
		`'x'`, `NaN`, `[1 2]`, `{"a" "b"}`, `{"a":1 "b":2}`,
		`"\\\"`, `"a	b"`, `"\u00"`, `[1}`, `{"a":1]`, `{"a":[}`, `fals`, `nulll`, `[tru]`, `1e5.`, `{"a"::1}`,
	}
	s := newScanner(64, 1000, 1<<20)
	for _, doc := range valid {
		for _, cs := range []int{1, 2, 3, len(doc) + 1} {
			if r := scanAll(s, doc, cs); r != resultOK {
				t.Errorf("valid %q (chunks of %d) = %v", doc, cs, r)
			}
		}
	}
	for _, doc := range invalid {
		for _, cs := range []int{1, 2, len(doc) + 1} {
			if r := scanAll(s, doc, cs); r != resultInvalid {
				t.Errorf("invalid %q (chunks of %d) = %v", doc, cs, r)
			}
		}
	}
}

func TestScannerLimits(t *testing.T) {
	cases := []struct {
		name        string
		depth, keys int
		bytes       int64
		doc         string
		want        result
	}{
		{"depth at limit", 3, 10, 100, `[[[1]]]`, resultOK},
		{"depth over limit", 3, 10, 100, `[[[[1]]]]`, resultTooDeep},
		{"mixed depth over", 2, 10, 100, `{"a":[{"b":1}]}`, resultTooDeep},
		{"siblings do not add depth", 2, 10, 100, `[[1],[2],[3]]`, resultOK},
		{"keys at limit", 5, 3, 100, `{"a":1,"b":{"c":2}}`, resultOK},
		{"keys over limit", 5, 3, 100, `{"a":1,"b":{"c":2,"d":3}}`, resultTooManyKeys},
		{"strings are not keys", 5, 1, 100, `{"a":["x","y","z"]}`, resultOK},
		{"zero keys allowed", 5, 0, 100, `{}`, resultOK},
		{"zero keys exceeded", 5, 0, 100, `{"a":1}`, resultTooManyKeys},
		{"bytes at limit", 5, 5, 7, `[1,2,3]`, resultOK},
		{"bytes over limit", 5, 5, 6, `[1,2,3]`, resultTooBig},
		{"limit counts unfinished input", 5, 5, 3, `[[[[[`, resultTooBig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newScanner(c.depth, c.keys, c.bytes)
			if r := scanAll(s, c.doc, len(c.doc)); r != c.want {
				t.Errorf("got %v, want %v", r, c.want)
			}
			if r := scanAll(s, c.doc, 1); r != c.want {
				t.Errorf("byte by byte: got %v, want %v", r, c.want)
			}
		})
	}
}

func TestScannerBombs(t *testing.T) {
	s := newScanner(32, 10000, 1<<20)
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	if r := scanAll(s, deep, 4096); r != resultTooDeep {
		t.Errorf("100000-deep array: %v", r)
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := range 20000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k`)
		b.WriteString(strings.Repeat("x", i%7))
		b.WriteString(`":0`)
	}
	b.WriteByte('}')
	if r := scanAll(s, b.String(), 4096); r != resultTooManyKeys {
		t.Errorf("20000 keys: %v", r)
	}
	if cap(s.stack) != 32 {
		t.Errorf("stack grew to %d; it must stay at max_depth", cap(s.stack))
	}
}

// FuzzScanner checks the scanner against encoding/json.Valid, whole and split
// into chunks at an arbitrary point.
func FuzzScanner(f *testing.F) {
	for _, seed := range []string{`{"a":[1,2,{"b":"c\u0041"}]}`, `-0.5e-3`, `[`, `{"a":1,}`, `"\"`, `tru`, `[1,2]x`, ` null `} {
		f.Add(seed, uint8(3))
	}
	f.Fuzz(func(t *testing.T, doc string, split uint8) {
		s := newScanner(1<<20, 1<<30, 1<<30)
		want := json.Valid([]byte(doc))
		got := scanAll(s, doc, len(doc)+1) == resultOK
		if got != want {
			t.Fatalf("scanner says %v, json.Valid says %v for %q", got, want, doc)
		}
		s.reset()
		k := int(split) % (len(doc) + 1)
		r := s.write([]byte(doc[:k]))
		if r == resultOK {
			r = s.write([]byte(doc[k:]))
		}
		if r == resultOK {
			r = s.close()
		}
		if (r == resultOK) != want {
			t.Fatalf("split at %d: %v, want valid=%v for %q", k, r, want, doc)
		}
	})
}

func TestSpecialExhaustive(t *testing.T) {
	// The first special byte of a word is found exactly, whatever follows.
	isSpecial := func(c byte) bool { return c == '"' || c == '\\' || c < 0x20 }
	for pos := range 8 {
		for c := range 256 {
			for _, tail := range []byte{'a', '"', 0x00, 0x1f, 0xff, '\\'} {
				w := []byte("aaaaaaaa")
				w[pos] = byte(c)
				for j := pos + 1; j < 8; j++ {
					w[j] = tail
				}
				first := -1
				for j, b := range w {
					if isSpecial(b) {
						first = j
						break
					}
				}
				got := -1
				if m := special(binary.LittleEndian.Uint64(w)); m != 0 {
					got = bits.TrailingZeros64(m) / 8
				}
				if got != first {
					t.Fatalf("special(%q) points at %d, first special byte at %d", w, got, first)
				}
			}
		}
	}
}
