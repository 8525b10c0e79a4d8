package policy

import (
	"context"
	"strings"
	"testing"
)

// TestUnconditionalConflictRefused: `allow := false` written where `default allow := false`
// was meant, beside `allow if { … }`, compiles in OPA and fails every request the other
// definition allows with eval_conflict_error (500). It is refused when the policies load.
func TestUnconditionalConflictRefused(t *testing.T) {
	for _, c := range []struct {
		name, src, want string
	}{
		{"false beside a condition", "package p\nallow := false\nallow if { input.request.method == \"POST\" }\n",
			"p.rego:2: rule p.allow := false has no condition, and p.rego:3 gives it true"},
		{"status beside a conditional status", "package p\nallow := true\nstatus := 401\nstatus := 403 if { input.request.method == \"GET\" }\n",
			"p.rego:3: rule p.status := 401 has no condition, and p.rego:4 gives it 403"},
		// A computed value may be the constant whenever it is defined.
		{"a computed value", "package p\nallow := true\nstatus := 401\nstatus := n if { input.x; n := 400 + 1 }\n", ""},
		{"two files of one package", "package p\nallow := true\nstatus := 401\n", "p.rego:3: rule p.status := 401 has no condition, and q.rego:2 gives it 403"},
		{"default meant", "package p\ndefault allow := false\nallow if { input.request.method == \"POST\" }\n", ""},
		{"the same value twice", "package p\nallow := true\nallow if { input.request.method == \"POST\" }\n", ""},
		{"one definition", "package p\nallow := true\n", ""},
		{"partial set rules", "package p\nallow := true\ndeny contains \"a\"\ndeny contains \"b\" if { input.x }\n", ""},
		{"an else chain", "package p\nallow := true\nstatus := 401 if { input.x } else := 403\n", ""},
		{"functions", "package p\nallow := true\nf(_) := 1\nf(x) := 2 if { x > 1 }\n", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			mods := map[string]string{"p.rego": c.src}
			if c.name == "two files of one package" {
				mods["q.rego"] = "package p\nstatus := 403 if { input.x }\n"
			}
			_, err := LoadModules(context.Background(), mods, nil, Options{})
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
	// A test file may define what it likes.
	if _, err := LoadModules(context.Background(), map[string]string{
		"p.rego":      "package p\nallow := true\n",
		"p_test.rego": "package p_test\nx := 1\nx := 2 if { input.y }\n",
	}, nil, Options{}); err != nil {
		t.Fatalf("a test file's rules: %v", err)
	}
}
