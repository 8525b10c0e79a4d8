package fastpath

import (
	"context"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestObjectRulesUnbuilt: a complete rule whose value is an object literal with constant keys
// is handed over unbuilt (Rules.Fields), with the values the built object has; Get builds the
// same object; a literal that is undefined, falls back to its default, enumerates or fails
// takes the ordinary way, with the ordinary result.
func TestObjectRulesUnbuilt(t *testing.T) {
	p, err := compileModules(t, map[string]string{"p.rego": `package p
a := {"key": input.k, "ttl": "1h"}
b := {"key": input.missing, "ttl": "1h"}
default c := {"d": 1}
c := {"key": input.missing}
d := {"x": input.k} if input.flag
e := {"x": input.k} if not input.flag
f := {"k": input.k, "again": a.key}
g := {"k": x} if { some x in input.xs; x > 1 }
h := {"ground": 1}
`}, "p", Options{})
	if err != nil {
		t.Fatal(err)
	}
	in := ast.MustParseTerm(`{"k": "abc", "flag": true, "xs": [1, 2]}`).Value
	var rules Rules
	if err := p.EvalRules(context.Background(), in, nil, nil, &rules); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a": `{"key": "abc", "ttl": "1h"}`,
		"c": `{"d": 1}`,
		"d": `{"x": "abc"}`,
		"f": `{"k": "abc", "again": "abc"}`,
		"g": `{"k": 2}`,
		"h": `{"ground": 1}`,
	}
	unbuilt := map[string]bool{"a": true, "d": true, "f": true}
	for _, name := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		f := ruleFields(&rules, name)
		if (f != nil) != unbuilt[name] {
			t.Errorf("%s: unbuilt %v, want %v", name, f != nil, unbuilt[name])
		}
		w, defined := want[name]
		if f != nil {
			obj := ast.MustParseTerm(w).Value.(ast.Object)
			for _, key := range obj.Keys() {
				if got := field(f, key); got == nil || !got.Equal(obj.Get(key)) {
					t.Errorf("%s: field %v = %v, want %v", name, key, got, obj.Get(key))
				}
			}
			if field(f, ast.StringTerm("nope")) != nil {
				t.Errorf("%s: a key the literal lacks has a value", name)
			}
		}
		got := rule(&rules, name)
		switch {
		case !defined && got != nil:
			t.Errorf("%s = %v, want undefined", name, got)
		case defined && (got == nil || !got.Equal(ast.MustParseTerm(w))):
			t.Errorf("%s = %v, want %s", name, got, w)
		}
		if f != nil && ruleFields(&rules, name) != nil {
			t.Errorf("%s: still unbuilt after Get built it", name)
		}
	}
	// The whole document (Eval) holds the built objects.
	doc, err := p.Eval(context.Background(), in, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.Value.(ast.Object).Get(ast.StringTerm("a")); v == nil || !v.Equal(ast.MustParseTerm(want["a"])) {
		t.Errorf("Eval: a = %v", v)
	}

	// A value that fails fails the evaluation, as it does built.
	p, err = compileModules(t, map[string]string{"p.rego": `package p
a := {"n": 1 / input.zero}
`}, "p", Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = p.EvalRules(context.Background(), ast.MustParseTerm(`{"zero": 0}`).Value, nil, nil, &rules)
	if err == nil || !strings.Contains(err.Error(), "divide by zero") {
		t.Errorf("a failing value: err = %v, want divide by zero", err)
	}
}

// TestConstantRules: a complete rule whose one definition is a constant without a condition
// is answered with that constant, nothing evaluated; a rule with a condition, a value read
// from the input, two definitions, an else branch or arguments is evaluated as before. The
// document is the one the rules define either way.
func TestConstantRules(t *testing.T) {
	p, err := compileModules(t, map[string]string{"a.rego": `package p
events := {"push", "ping"}
sources := ["10.0.0.0/8", "127.0.0.0/8"]
n := 3
obj := {"a": [1, {"b": null}]}
default d := 1
d := 2
cond := 1 if input.x
read := input.x
two := 1
elsed := 1 if input.y else := 2
f(x) := 1
`, "b.rego": `package p
two := 1
`}, "p", Options{})
	if err != nil {
		t.Fatal(err)
	}
	konst := map[string]bool{"events": true, "sources": true, "n": true, "obj": true, "d": true}
	for _, rs := range p.rules {
		name := string(rs.key.Value.(ast.String))
		if (rs.konst != nil) != konst[name] {
			t.Errorf("%s: constant %v, want %v", name, rs.konst != nil, konst[name])
		}
	}
	doc, err := p.Eval(context.Background(), ast.MustParseTerm(`{"x": "v"}`).Value, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := ast.MustParseTerm(`{"events": {"push", "ping"}, "sources": ["10.0.0.0/8", "127.0.0.0/8"], "n": 3,
		"obj": {"a": [1, {"b": null}]}, "d": 2, "cond": 1, "read": "v", "two": 1, "elsed": 2}`)
	if !doc.Equal(want) {
		t.Errorf("document %v, want %v", doc, want)
	}
}

// ruleIndex is the position of the rule named name in rs, -1 when it is undefined.
func ruleIndex(rs *Rules, name string) int {
	for i := range rs.Len() {
		if rs.Name(i) == name {
			return i
		}
	}
	return -1
}

// rule is the value of the rule named name, nil when it is undefined.
func rule(rs *Rules, name string) *ast.Term {
	if i := ruleIndex(rs, name); i >= 0 {
		return rs.At(i)
	}
	return nil
}

// ruleFields is FieldsAt of the rule named name, nil when it is undefined.
func ruleFields(rs *Rules, name string) *Fields {
	if i := ruleIndex(rs, name); i >= 0 {
		return rs.FieldsAt(i)
	}
	return nil
}

// field is the value of key k in f, nil when f has none.
func field(f *Fields, k *ast.Term) *ast.Term {
	for i := range f.Len() {
		if key, v := f.At(i); key.Value.Compare(k.Value) == 0 {
			return v
		}
	}
	return nil
}
