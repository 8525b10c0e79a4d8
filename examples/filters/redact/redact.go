package main

import (
	"encoding/binary"
	"math/bits"
)

// redactor masks e-mail addresses and payment card numbers in place. Masks
// keep the length and the separators, so a redacted body needs no copy and a
// JSON body stays valid JSON.
//
// # Notes
//
// It makes one pass that skips uninteresting bytes eight at a time (SWAR)
// and looks closer only at '@', digits and, in JSON, quotes and
// backslashes. Byte-at-a-time loops are what Go code in a wasm guest does
// worst: every branch goes through the function's dispatch loop, and with a
// deadline wazero checks for interruption on each.
type redactor struct {
	emails, cards bool
}

// json masks PII inside the string literals of a JSON text. A JSON escape
// (\n, \u0040…) ends a run of plain text: text is matched between escapes,
// never across them, so masking can never break an escape sequence.
func (r redactor) json(b []byte) int { return r.scan(b, true) }

// text masks PII in plain text.
func (r redactor) text(b []byte) int { return r.scan(b, false) }

func (r redactor) scan(b []byte, json bool) int {
	count := 0
	inString := !json // plain text is one long string
	run := 0          // where the current run of plain text starts
	for i := 0; i < len(b); {
		if !inString {
			q := next[quotes](b, i)
			if q == len(b) {
				break
			}
			i, run, inString = q+1, q+1, true
			continue
		}
		var j int
		if json {
			j = next[jsonString](b, i)
		} else {
			j = next[plainText](b, i)
		}
		if j == len(b) {
			break
		}
		switch c := b[j]; {
		case c == '"' && json:
			i, inString = j+1, false
		case c == '\\' && json:
			if j+1 < len(b) && b[j+1] == 'u' {
				j += 6
			} else {
				j += 2
			}
			i, run = j, j
		case c == '@':
			end, ok := j+1, false
			if r.emails {
				end, ok = maskEmail(b, run, j)
			}
			if ok {
				count++
			}
			i = end
		default: // a digit
			end, ok := j+1, false
			if r.cards {
				end, ok = maskCard(b, run, j)
			}
			if ok {
				count++
			}
			i = end
		}
	}
	return count
}

// next returns the index of the first byte at or after i that mask marks,
// or len(b). It is generic over the mask so that each use compiles to its
// own loop with the mask inlined: an indirect call per word would cost more
// than the word.
func next[M masker](b []byte, i int) int {
	var m M
	for i+8 <= len(b) {
		if v := m.mask(binary.LittleEndian.Uint64(b[i:])); v != 0 {
			return i + bits.TrailingZeros64(v)/8
		}
		i += 8
	}
	for ; i < len(b); i++ {
		// The byte alone in a word: the mask's lowest byte is exact.
		if m.mask(uint64(b[i]))&0x80 != 0 {
			return i
		}
	}
	return len(b)
}

// maskEmail masks the address around the '@' at b[at], if there is one:
// local@domain.tld, where the local part starts at or after from. The local
// part and the domain labels become '*'; the dots, '@' and the top-level
// domain stay. It returns where scanning goes on and whether it masked.
func maskEmail(b []byte, from, at int) (int, bool) {
	start := at
	for start > from && at-start < 64 && isLocal(b[start-1]) {
		start--
	}
	end := at + 1
	for end < len(b) && end-at <= 255 && isDomain(b[end]) {
		end++
	}
	for end > at+1 && (b[end-1] == '.' || b[end-1] == '-') {
		end-- // trailing punctuation of the sentence, not the domain
	}
	if start == at {
		return at + 1, false
	}
	tld := lastDot(b[at+1 : end])
	if tld < 1 || !isTLD(b[at+1+tld+1:end]) {
		return at + 1, false
	}
	for i := start; i < at+1+tld; i++ {
		if b[i] != '.' && b[i] != '@' {
			b[i] = '*'
		}
	}
	return end, true
}

func lastDot(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '.' {
			return i
		}
	}
	return -1
}

func isTLD(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	for _, c := range b {
		if !isAlpha(c) {
			return false
		}
	}
	return true
}

// maskCard masks the digits, all but the last four, of a card-like number
// starting at b[i]: 13 to 19 digits, optionally grouped with single spaces
// or dashes, not part of a longer word or number, starting like a card (2,
// 3, 4, 5 or 6) and passing the Luhn check. The last two conditions keep
// order numbers, IDs and timestamps (which mostly start with 1 or fail Luhn)
// intact. from is where the current run of text starts. It returns where
// scanning goes on and whether it masked.
func maskCard(b []byte, from, i int) (int, bool) {
	if i > from && isAlnum(b[i-1]) {
		// Inside a word or a longer number: skip the rest of it.
		for i < len(b) && isAlnum(b[i]) {
			i++
		}
		return i, false
	}
	// Collect the run: digits with single separators between them.
	end, digits := i, 0
	for end < len(b) {
		if isDigit(b[end]) {
			digits++
			end++
			continue
		}
		if (b[end] == ' ' || b[end] == '-') && end+1 < len(b) && isDigit(b[end+1]) && digits < 19 {
			end++
			continue
		}
		break
	}
	run := b[i:end]
	if end < len(b) && isAlnum(b[end]) || digits < 13 || digits > 19 || !cardPrefix(run) || !luhn(run) {
		for end < len(b) && isAlnum(b[end]) {
			end++
		}
		return end, false
	}
	keep := 4
	for j := len(run) - 1; j >= 0; j-- {
		if !isDigit(run[j]) {
			continue
		}
		if keep > 0 {
			keep--
			continue
		}
		run[j] = '*'
	}
	return end, true
}

func cardPrefix(run []byte) bool {
	switch run[0] {
	case '3', '4', '5', '6':
		return true
	case '2': // Mastercard 2221–2720
		n := 0
		for _, c := range run {
			if isDigit(c) {
				n = n*10 + int(c-'0')
				if n >= 1000 {
					break
				}
			}
		}
		return n >= 2221 && n <= 2720
	}
	return false
}

// luhn checks the Luhn digit of the digits in run.
func luhn(run []byte) bool {
	sum, double := 0, false
	for j := len(run) - 1; j >= 0; j-- {
		c := run[j]
		if !isDigit(c) {
			continue
		}
		d := int(c - '0')
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

func isLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func isDomain(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

// SWAR masks. Each returns a mask whose lowest set bit is the top bit of the
// first byte of the little-endian word v that it looks for, or 0. They are
// built from the has-zero-byte and has-less-than tests, in which a borrow
// can set bits above a match, never below it, so the lowest bit is exact.
const (
	ones = 0x0101010101010101
	tops = 0x8080808080808080
)

func byteMask(v uint64, c byte) uint64 {
	x := v ^ (ones * uint64(c))
	return (x - ones) &^ x
}

// digitMask marks ASCII digits: XOR with '0' maps digits, and only them, to
// bytes below 10.
func digitMask(v uint64) uint64 {
	x := v ^ (ones * '0')
	return (x - ones*10) &^ x & tops
}

// masker is a SWAR mask as a type, for next.
type masker interface{ mask(v uint64) uint64 }

type (
	quotes     struct{} // '"'
	plainText  struct{} // what plain text needs a look at: '@' and digits
	jsonString struct{} // in a JSON string, also the '"' and '\\' that end a run
)

func (quotes) mask(v uint64) uint64 { return byteMask(v, '"') & tops }

func (plainText) mask(v uint64) uint64 { return byteMask(v, '@')&tops | digitMask(v) }

func (jsonString) mask(v uint64) uint64 {
	return (byteMask(v, '@')|byteMask(v, '"')|byteMask(v, '\\'))&tops | digitMask(v)
}
