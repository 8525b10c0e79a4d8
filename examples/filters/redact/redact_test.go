package main

import (
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strings"
	"testing"
)

func TestRedactText(t *testing.T) {
	r := redactor{emails: true, cards: true}
	cases := []struct {
		name, in, want string
		count          int
	}{
		{"email", "contact alice@example.com now", "contact *****@*******.com now", 1},
		{"subdomain keeps tld", "bob.smith+tag@mail.example.co.uk.", "***.*********@****.*******.**.uk.", 1},
		{"two emails", "a@b.io,c@d.io", "*@*.io,*@*.io", 2},
		{"no tld", "user@localhost", "user@localhost", 0},
		{"one-letter tld", "x@y.z", "x@y.z", 0},
		{"bare at", "@ mention and foo@", "@ mention and foo@", 0},
		{"visa", "card 4111111111111111 ok", "card ************1111 ok", 1},
		{"grouped visa", "4111 1111 1111 1111", "**** **** **** 1111", 1},
		{"dashed amex", "3782-822463-10005", "****-******-*0005", 1},
		{"mastercard 2-series", "2221000000000009", "************0009", 1},
		{"luhn fails", "4111111111111112", "4111111111111112", 0},
		{"starts with 1 (id, timestamp)", "1234567812345670", "1234567812345670", 0},
		{"too short", "411111111111", "411111111111", 0},
		{"too long", "41111111111111111111111", "41111111111111111111111", 0},
		{"inside a word", "x4111111111111111", "x4111111111111111", 0},
		{"followed by letters", "4111111111111111abc", "4111111111111111abc", 0},
		{"double separator", "4111  1111 1111 1111", "4111  1111 1111 1111", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := []byte(c.in)
			n := r.text(b)
			if string(b) != c.want || n != c.count {
				t.Errorf("got %q (%d), want %q (%d)", b, n, c.want, c.count)
			}
		})
	}
}

func TestRedactJSONKeepsJSONValid(t *testing.T) {
	r := redactor{emails: true, cards: true}
	cases := []struct {
		name, in, want string
		count          int
	}{
		{"strings only", `{"email":"alice@example.com","n":4111111111111111,"c":"4111111111111111"}`,
			`{"email":"*****@*******.com","n":4111111111111111,"c":"************1111"}`, 2},
		{"escape before email", `{"m":"line\nbob@x.io"}`, `{"m":"line\n***@*.io"}`, 1},
		{"unicode escape before email", `{"m":"\u00e9bob@x.io"}`, `{"m":"\u00e9***@*.io"}`, 1},
		{"escaped at is not matched", `{"m":"bob\u0040x.io"}`, `{"m":"bob\u0040x.io"}`, 0},
		{"escaped quote", `{"m":"say \"hi\" to eve@evil.org"}`, `{"m":"say \"hi\" to ***@****.org"}`, 1},
		{"key", `{"ann@corp.com":true}`, `{"***@****.com":true}`, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := []byte(c.in)
			n := r.json(b)
			if string(b) != c.want || n != c.count {
				t.Errorf("got %s (%d), want %s (%d)", b, n, c.want, c.count)
			}
			if !json.Valid(b) {
				t.Errorf("result is not valid JSON: %s", b)
			}
		})
	}
}

func TestRedactSwitches(t *testing.T) {
	in := "alice@example.com 4111111111111111"
	for _, c := range []struct {
		r    redactor
		want string
	}{
		{redactor{emails: true}, "*****@*******.com 4111111111111111"},
		{redactor{cards: true}, "alice@example.com ************1111"},
	} {
		b := []byte(in)
		c.r.text(b)
		if string(b) != c.want {
			t.Errorf("%+v: got %q, want %q", c.r, b, c.want)
		}
	}
}

// FuzzRedactJSON checks that redacting a valid JSON text keeps it valid JSON
// of the same length.
func FuzzRedactJSON(f *testing.F) {
	for _, s := range []string{`{"a":"x@y.com"}`, `["4111 1111 1111 1111","\u0041@b.cd"]`, `"\\a@b.cd"`, `{"k":"\"q@w.er\\"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			return
		}
		b := []byte(s)
		redactor{emails: true, cards: true}.json(b)
		if len(b) != len(s) || !json.Valid(b) {
			t.Fatalf("%q became %q", s, b)
		}
		if strings.Count(string(b), `"`) != strings.Count(s, `"`) {
			t.Fatalf("quotes changed: %q → %q", s, b)
		}
	})
}

func TestMasksExhaustive(t *testing.T) {
	// Each mask finds the first byte it looks for exactly, whatever follows.
	masks := []struct {
		name string
		mask func(uint64) uint64
		next func([]byte, int) int
		is   func(byte) bool
	}{
		{"digit", digitMask, nil, isDigit},
		{"quote", quotes{}.mask, next[quotes], func(c byte) bool { return c == '"' }},
		{"text", plainText{}.mask, next[plainText], func(c byte) bool { return c == '@' || isDigit(c) }},
		{"string", jsonString{}.mask, next[jsonString], func(c byte) bool { return c == '@' || c == '"' || c == '\\' || isDigit(c) }},
	}
	for _, m := range masks {
		for pos := range 8 {
			for c := range 256 {
				for _, tail := range []byte{'a', '0', '@', '"', '\\', 0x00, 0xff, '9' + 1, '0' - 1} {
					w := []byte("aaaaaaaa")
					w[pos] = byte(c)
					for j := pos + 1; j < 8; j++ {
						w[j] = tail
					}
					first := -1
					for j, b := range w {
						if m.is(b) {
							first = j
							break
						}
					}
					got := -1
					if v := m.mask(binary.LittleEndian.Uint64(w)); v != 0 {
						got = bits.TrailingZeros64(v) / 8
					}
					if got != first {
						t.Fatalf("%s mask of %q points at %d, first match at %d", m.name, w, got, first)
					}
				}
			}
		}
		if m.next == nil {
			continue
		}
		// next agrees, on words and on short tails it checks byte by byte.
		for _, s := range []string{"", "abc", "ab@", "a1", "abcdefghij@", "abcdefgh\\"} {
			want := len(s)
			for j := range len(s) {
				if m.is(s[j]) {
					want = j
					break
				}
			}
			if got := m.next([]byte(s), 0); got != want {
				t.Errorf("%s: next(%q) = %d, want %d", m.name, s, got, want)
			}
		}
	}
}
