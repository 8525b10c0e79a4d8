package decisionlog

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// TestAppendControlsEscaped: JSON encoding/json wrote (an admin answer, which the CLI prints
// too) has DEL and the C1 controls escaped, and stays the same JSON.
func TestAppendControlsEscaped(t *testing.T) {
	in := []byte("{\"route\":\"r\u009b2J\",\"last_error\":\"boom\u007f\\u001b\",\"ok\":\"é\"}")
	out := AppendControlsEscaped(nil, in)
	if strings.ContainsAny(string(out), "\u009b\u007f") {
		t.Fatalf("a control is left raw: %q", out)
	}
	var a, b map[string]string
	if err := json.Unmarshal(in, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &b); err != nil || !maps.Equal(a, b) {
		t.Fatalf("escaped %q reads %v (%v), want %v", out, b, err, a)
	}
}
