package main

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"
)

// printable is s with every control character (C0, DEL, C1) written as \u00XX, for a table on
// a terminal: the fields come from the delivery store or the fleet's blocks, which whoever
// can write them fills, and a terminal takes an escape sequence (ESC, or C1's CSI) as a
// command that can retitle it, clear or hide lines. A tab would also break the table.
func printable(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if isControl(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 }

// escapeJSONControls is the admin API's JSON b with DEL and the C1 controls written as
// \u00XX, which encoding/json writes raw (it escapes C0 alone): U+009B is a terminal's CSI.
// Outside strings JSON has only ASCII, so every such character is in a string, where the
// escape means the same.
func escapeJSONControls(b []byte) []byte {
	isDELOrC1 := func(r rune) bool { return r == 0x7f || r >= 0x80 && r < 0xa0 }
	if !bytes.ContainsFunc(b, isDELOrC1) {
		return b
	}
	out := make([]byte, 0, len(b)+16)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if isDELOrC1(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[:n]...)
		}
		b = b[n:]
	}
	return out
}
