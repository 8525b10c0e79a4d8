package policy

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// dataKeysCorpus reads the base document by keys of every JSON type: topdown turns such a
// reference into a storage path (a number becomes its text, an array index is parsed from a
// string, a boolean, null or composite reaches nothing), which the compiled evaluator must
// follow rather than compare keys as values.
var dataKeysCorpus = map[string]string{
	"data_keys.rego": `package t.data_keys
allow if not data.blocked[input.request.json.account]
deny contains "nested" if data.nested[2].x == "bar"
deny contains "float" if data.nested[2.5]
labels := {"arr": data.arr[input.request.json.idx]} if input.request.json.idx != null
upstream_headers[k] := "1" if { some k in input.request.json.keys; data.blocked[k] }
status := 400 + count([i | some i in input.request.json.keys; data.arr[i]]) if input.request.json.keys
tier := "listed" if { data.blocked[input.request.json.account] } else := "open"
deny contains "listed" if tier == "listed"
`,
	"data_iter.rego": `package t.data_iter
allow if { some i; data.arr[i] == input.request.json.account }
labels := {k: v | some k, v in data.nested; k == input.request.json.account}
`,
}

var dataKeysData = map[string]any{
	"blocked": map[string]any{"1": true, "2.5": true, "true": true, "null": true, "x": true, "1.0": true, "[1]": true},
	"arr":     []any{"a", "b", "c"},
	"nested":  map[string]any{"2": map[string]any{"x": "bar"}, "2.5": "f", "k": "v"},
}

// TestFastPathBaseDocumentKeys: references into the base document by numbers, floats,
// booleans, null, composites, strings into arrays and iteration variables decide as topdown
// does, and reach each of topdown's outcomes.
func TestFastPathBaseDocumentKeys(t *testing.T) {
	set, err := LoadModules(context.Background(), dataKeysCorpus, dataKeysData, Options{})
	if err != nil {
		t.Fatal(err)
	}
	accounts := []string{`1`, `1.0`, `2`, `2.5`, `true`, `false`, `null`, `"x"`, `"1"`, `"y"`, `[1]`, `{"a":1}`, `"a"`, `"2"`, `"k"`}
	idxs := []string{`0`, `"1"`, `1.0`, `"+1"`, `-1`, `5`, `true`, `"a"`, `2.00`, `1.5`, `[0]`, `null`}
	keys := []string{`[1, "x", true]`, `[0, "2", 2.0, null]`, `["1.0", {"a": 1}, [1]]`}
	for _, pkg := range set.Packages() {
		q := prepareCompiled(t, set, pkg)
		seen := map[string]bool{}
		for i, acc := range accounts {
			in := `{"account": ` + acc + `, "idx": ` + idxs[i%len(idxs)] + `, "keys": ` + keys[i%len(keys)] + `}`
			req := requestValue("POST", "/", nil, in)
			req.Insert(ast.StringTerm("json"), ast.MustParseTerm(in))
			d, err := evalBoth(t, q, doc(req), nil)
			out, _ := json.Marshal(struct {
				D   Decision
				Err bool
			}{d, err != nil})
			seen[string(out)] = true
		}
		t.Logf("%s: %d distinct decisions over %d inputs", pkg, len(seen), len(accounts))
		if len(seen) < 3 {
			t.Errorf("%s: only %d distinct decisions over %d inputs: the keys reach too little", pkg, len(seen), len(accounts))
		}
	}
}
