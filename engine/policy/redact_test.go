package policy

import "testing"

func TestRedactQuoted(t *testing.T) {
	for in, want := range map[string]string{
		"no quotes":                           "no quotes",
		`parsing time "Bearer x" as "2006"`:   `parsing time "…" as "…"`,
		`escaped "a \"b\" c" end`:             `escaped "…" end`,
		`unterminated "secret`:                `unterminated "…"`,
		`p.rego:3: eval_builtin_error: f: ""`: `p.rego:3: eval_builtin_error: f: "…"`,
	} {
		if got := RedactQuoted(in); got != want {
			t.Errorf("RedactQuoted(%q) = %q, want %q", in, got, want)
		}
	}
}
