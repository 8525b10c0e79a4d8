package fastpath

import (
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestNestedEnumeratingDefinitions: a definition whose body enumerates and, inside that
// enumeration, evaluates other enumerating rules for the first time (so their evaluations
// nest in its own), gives topdown's values: each nesting depth keeps its own continuation.
func TestNestedEnumeratingDefinitions(t *testing.T) {
	src := `package t

xs := [1, 2, 3]

inner if {
	some x in xs
	x > 2
}

middle := z if {
	some z in xs
	inner
	z == 2
}

outer := y if {
	some y in xs
	y == 1
	middle == 2
	inner
}
`
	for _, q := range []string{"data.t.outer", "data.t.middle", "data.t"} {
		c := diffCase{modules: map[string]string{"t.rego": src}, version: ast.RegoV1, query: ast.MustParseRef(q)}
		if out, detail := compareBoth(c); out != diffAgree {
			t.Errorf("%s: outcome %d: %s", q, out, detail)
		}
	}
	_, p, _, _, detail := compileCase(diffCase{modules: map[string]string{"t.rego": src}, version: ast.RegoV1, query: ast.MustParseRef("data.t")})
	if p == nil {
		t.Fatalf("the compiled evaluator refuses the package: %s", detail)
	}
	want := ast.MustParseTerm(`{"xs": [1, 2, 3], "inner": true, "middle": 2, "outer": 1}`)
	if got, err := evalCompiled(p, nil); err != nil || !got.Equal(want) {
		t.Errorf("data.t = %v (%v), want %v", got, err, want)
	}
}
