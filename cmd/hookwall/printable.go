package main

import (
	"fmt"
	"strings"
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
