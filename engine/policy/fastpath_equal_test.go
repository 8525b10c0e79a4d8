package policy

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestFastPathAgreesOnEqualButDistinctValues: values that are equal but written differently
// (1 and 1.0, numbers past float64's range spelled two ways), and data keys a variable
// reaches, are where a compiled shortcut can part from topdown: which of two equal values a
// rule keeps, whether a function's cached result is reused for an equal argument, whether an
// object-literal rule asks the rule index. Each case must decide as topdown does.
func TestFastPathAgreesOnEqualButDistinctValues(t *testing.T) {
	cases := []struct {
		name, src string
		data      map[string]any
		input     string
	}{
		{"two definitions, equal values: the first is kept", `package p
allow := true
amount := input.request.json.amount
amount := input.request.json.total
labels := {"amount": amount}
`, nil, `{"request": {"json": {"amount": 1, "total": 1.0}}}`},
		{"one definition, two equal solutions: the first is kept", `package p
allow := true
v := x if { some x in input.request.json.xs }
labels := {"v": v}
`, nil, `{"request": {"json": {"xs": [1, 1.0]}}}`},
		{"object comprehension, equal values of one key: the last is kept", `package p
allow := true
labels := {"amount": v | some v in input.request.json.amounts}
`, nil, `{"request": {"json": {"amounts": [1, 1.0]}}}`},
		{"a function's cached result is not reused for an argument equal but hashed apart", `package p
f(x) := sprintf("%v", [x])
default allow := false
allow if {
	f(input.a) == "1e400"
	f(input.b) == "10e399"
}
`, nil, `{"a": 1e400, "b": 10e399}`},
		{"an object-literal rule asks the rule index about a data key a variable reaches", `package p
allow := true
labels := {"tenant": input.request.json.tenant} if data.tenants[input.request.json.tenant]
`, map[string]any{"tenants": map[string]any{"2": map[string]any{}}}, `{"request": {"json": {"tenant": 2}}}`},
		{"the same for dedupe", `package p
allow := true
dedupe := {"key": input.request.json.id, "ttl": "1h"} if data.m[input.request.json.k]
`, map[string]any{"m": map[string]any{"2": true}}, `{"request": {"json": {"id": "d1", "k": 2}}}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, err := LoadModules(context.Background(), map[string]string{"p.rego": c.src}, c.data, Options{})
			if err != nil {
				t.Fatal(err)
			}
			q := prepareCompiled(t, set, "p")
			evalBoth(t, q, ast.MustParseTerm(c.input).Value, nil)
		})
	}
}
