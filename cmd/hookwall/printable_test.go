package main

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestListsEscapeControls: a delivery whose id, route or last error holds terminal escape
// sequences (written into the store by whoever can write it) is listed with them escaped,
// so that nothing reaches the operator's terminal as a command.
func TestListsEscapeControls(t *testing.T) {
	doc := `{"deliveries":[{"id":"x\u001b]0;PWNED\u0007\u001b[2K\rfake","route":"r\u009b2J","state":"dead","attempts":1,
		"received_at":"2026-12-07T00:00:00Z","last_error":"ok\u001b[8mhidden\ttab"}]}`
	var out bytes.Buffer
	if code := printDeliveries(&out, io.Discard, []byte(doc)); code != 0 {
		t.Fatalf("exit %d", code)
	}
	got := out.String()
	if strings.ContainsAny(got, "\x1b\x07\r\u009b") || strings.Count(got, "\t") != 0 {
		t.Fatalf("a control reached the table: %q", got)
	}
	for _, want := range []string{`x\u001b]0;PWNED\u0007\u001b[2K\u000dfake`, `r\u009b2J`, `ok\u001b[8mhidden\u0009tab`} {
		if !strings.Contains(got, want) {
			t.Fatalf("table %q lacks %q", got, want)
		}
	}
	if printable("plain route/é") != "plain route/é" {
		t.Fatal("a printable text changed")
	}
}
