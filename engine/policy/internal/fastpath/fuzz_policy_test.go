package fastpath

import (
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/test/cases"
	"github.com/open-policy-agent/opa/v1/util"
)

// moduleSep separates the modules of one fuzz input.
const moduleSep = "\n#-- module --\n"

// FuzzCompiledPolicies generates small Rego packages, with data documents and inputs, from a
// grammar of the compiled evaluator's subset (gen), and evaluates each with both
// evaluators: any difference in value, definedness or error class fails. Beside the
// generated package it evaluates the policy given as text (modules, query, data, input), so
// that the fuzzer also mutates OPA's conformance cases, with which it is seeded when fuzzing.
//
//	go test -run '^$' -fuzz FuzzCompiledPolicies -fuzztime 10m ./engine/policy/internal/fastpath
func FuzzCompiledPolicies(f *testing.F) {
	for _, seed := range []string{"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", "\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15", "\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8", "\x01\x11\x21\x31\x41\x51\x61\x71\x81\x91\xa1\xb1"} {
		f.Add("", "", "", "", []byte(seed))
	}
	f.Add("package p\n\nr contains k if { some k; input.m[k] = k }\n", "data.p.r", `{}`, `{"m": {"a": "a", "b": 1}}`, []byte(nil))
	f.Add("package p\n\nr := data.d[input.k]\n", "data.p", `{"d": {"1": "one", "1.5": "f"}, "a": ["x"]}`, `{"k": 1}`, []byte(nil))
	// Found by this fuzzer: topdown's rule index compares the key with the document's keys
	// as values, and rules out the first definition that evaluation (by storage path) holds.
	f.Add("package p\n\nr := 1 if { data.d[input.k] } else := 2\n", "data.p.r", `{"d": {"0": "x"}}`, `{"k": 0}`, []byte(nil))
	if fz := flag.Lookup("test.fuzz"); fz != nil && fz.Value.String() != "" {
		// Fuzzing: OPA's conformance cases (v1) that the compiled evaluator accepts are seeds.
		// Plain go test does not run them again: TestOPAConformance does.
		addConformanceSeeds(f)
	}
	f.Fuzz(func(t *testing.T, modules, query, data, input string, gen []byte) {
		if len(gen) > 0 {
			g := &grammar{b: gen}
			c := g.policy()
			checkBoth(t, c)
			c.query = ast.MustParseRef("data.fz." + g.ruleName())
			checkBoth(t, c)
		}
		if modules != "" {
			c, ok := textCase(modules, query, data, input)
			if ok {
				checkBoth(t, c)
			}
		}
	})
}

// checkBoth fails t when the evaluators answer c differently.
func checkBoth(t *testing.T, c diffCase) {
	t.Helper()
	if out, detail := compareBoth(c); out == diffDiverge {
		var src []string
		for name, m := range c.modules {
			src = append(src, "# "+name+"\n"+m)
		}
		t.Fatalf("%s\nquery %s\ndata %v\ninput %v\n%s", detail, c.query, c.data, c.input, strings.Join(src, "\n"))
	}
}

// textCase reads a policy given as text: modules separated by moduleSep, a data reference,
// the base document as JSON and the input as a Rego term.
func textCase(modules, query, data, input string) (diffCase, bool) {
	ref, err := ast.ParseRef(query)
	if err != nil {
		return diffCase{}, false
	}
	c := diffCase{modules: map[string]string{}, version: ast.RegoV1, query: ref}
	for i, m := range strings.Split(modules, moduleSep) {
		c.modules[fmt.Sprintf("m%d.rego", i)] = m
	}
	if data != "" {
		if err := util.UnmarshalJSON([]byte(data), &c.data); err != nil {
			return diffCase{}, false
		}
	}
	if input != "" {
		in, err := ast.ParseTerm(input)
		if err != nil || !in.IsGround() {
			return diffCase{}, false
		}
		c.input = in
	}
	return c, true
}

// addConformanceSeeds adds OPA's v1 conformance cases that the compiled evaluator accepts.
func addConformanceSeeds(f *testing.F) {
	set, err := cases.Load(filepath.Join(opaModuleDir(f), "v1", "test", "cases", "testdata", "v1"))
	if err != nil {
		f.Fatal(err)
	}
	for _, tc := range set.Cases {
		c, ok := conformanceCase(tc, ast.RegoV1)
		if !ok || c.caps != nil {
			continue
		}
		if _, p, _, _, _ := compileCase(c); p == nil {
			continue // the compiled evaluator refuses it: nothing to compare
		}
		data, input := "", ""
		if c.data != nil {
			data = string(util.MustMarshalJSON(c.data))
		}
		if c.input != nil {
			input = c.input.String()
		}
		f.Add(strings.Join(tc.Modules, moduleSep), c.query.String(), data, input, []byte(nil))
	}
}

// grammar generates a package of the compiled evaluator's subset from bytes: every choice
// reads the next byte (zero once they run out), so the fuzzer's mutations move through
// the grammar.
type grammar struct {
	b     []byte
	i     int
	rules int
}

func (g *grammar) n(k int) int {
	if g.i >= len(g.b) {
		return 0
	}
	v := int(g.b[g.i])
	g.i++
	return v % k
}

func (g *grammar) pick(xs ...string) string { return xs[g.n(len(xs))] }

// scalars are keys and values of every JSON type, numbers in several spellings.
var scalars = []string{`0`, `1`, `2`, `1.0`, `2.5`, `-1`, `"0"`, `"1"`, `"+1"`, `"1.0"`, `"x"`, `"k"`, `"by"`, `true`, `false`, `null`}

var composites = []string{`[1]`, `[0, "1"]`, `{"by": "x"}`, `{"a": 1}`, `{"by": 1}`, `[]`, `{}`}

// dataKeys are the object keys of generated documents: strings that read as numbers,
// booleans and null too.
var dataKeys = []string{`"0"`, `"1"`, `"2"`, `"1.0"`, `"2.5"`, `"true"`, `"null"`, `"x"`, `"k"`, `"by"`, `"[1]"`}

func (g *grammar) scalar() string    { return g.pick(scalars...) }
func (g *grammar) composite() string { return g.pick(composites...) }

// value is a JSON value of depth at most d.
func (g *grammar) value(d int) string {
	switch g.n(5) {
	case 0, 1:
		return g.scalar()
	case 2:
		if d > 0 {
			return g.object(d - 1)
		}
	case 3:
		if d > 0 {
			return g.array(d - 1)
		}
	}
	return g.pick(`"x"`, `1`, `{"by": "x"}`, `"k"`, `"by"`)
}

func (g *grammar) object(d int) string {
	n := g.n(5)
	parts := make([]string, 0, n)
	seen := map[string]bool{}
	for range n {
		k := g.pick(dataKeys...)
		if seen[k] {
			continue
		}
		seen[k] = true
		parts = append(parts, k+": "+g.value(d))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func (g *grammar) array(d int) string {
	n := g.n(5)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = g.value(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// collection is a reference to a collection of the input or the base document.
func (g *grammar) collection() string {
	return g.pick("input.m", "input.a", "data.d", "data.a", "data.d.x", "input.m.x", "data.a[0]")
}

// key is a term usable as a key: a constant of any type, or one read from the input.
func (g *grammar) key() string {
	switch g.n(3) {
	case 0:
		return g.scalar()
	case 1:
		return g.pick("input.k", "input.i", "input.a[0]", "input.m.by")
	}
	return g.composite()
}

// term is a ground term: a constant, a reference with a key of any type, a rule of the
// package, or the whole input.
func (g *grammar) term() string {
	switch g.n(7) {
	case 0:
		return g.scalar()
	case 1:
		return g.composite()
	case 2:
		return g.collection() + "[" + g.key() + "]"
	case 3:
		if g.rules > 0 {
			return fmt.Sprintf("r%d", g.n(g.rules))
		}
	case 4:
		return g.pick("input.k", "input.i", "input", "count("+g.collection()+")")
	case 5:
		return "object.get(" + g.collection() + ", " + g.key() + ", \"dflt\")"
	}
	return g.collection()
}

// rule is one rule (or a rule and its helpers) named rN.
func (g *grammar) rule() string {
	n := g.rules
	name := fmt.Sprintf("r%d", n)
	coll := g.collection()
	switch g.n(18) {
	case 0: // a variable unified with a reference it indexes
		return fmt.Sprintf("%s contains k if { some k; %s[k] = k }", name, coll)
	case 1:
		return fmt.Sprintf("%s contains k if { some k; %s[k] == k }", name, coll)
	case 2: // a composite side built from the key
		return fmt.Sprintf("%s contains k if { some k; %s[k] = {%q: k} }", name, coll, g.pick("by", "a"))
	case 3: // references on both sides, indexed by one variable
		return fmt.Sprintf("%s contains i if { some i; %s[i] = %s[i] }", name, coll, g.collection())
	case 4:
		return fmt.Sprintf("%s := %s if %s == %s", name, g.term(), g.term(), g.term())
	case 5:
		return fmt.Sprintf("%s := %s if { %s } else := %s if { %s } else := %s", name, g.term(), g.term(), g.term(), g.term(), g.term())
	case 6: // a function with a key of any type, called with a term
		return fmt.Sprintf("f%d(x) := y if { y := %s[x] }\nf%d(x) := %s if not %s[x]\n%s := f%d(%s)", n, coll, n, g.term(), coll, name, n, g.key())
	case 7:
		return fmt.Sprintf("%s := [x | some x in %s; x != %s]", name, coll, g.term())
	case 8:
		return fmt.Sprintf("%s := {k: v | some k, v in %s; k != %s}", name, coll, g.key())
	case 9:
		return fmt.Sprintf("%s := {x | some x in %s}", name, coll)
	case 10:
		return fmt.Sprintf("%s if not %s[%s]", name, coll, g.key())
	case 11: // reference heads, with a default and conflicting definitions
		return fmt.Sprintf("%s.a := %s if %s\n%s.b := %s\n%s.a := %s if %s", name, g.term(), g.term(), name, g.term(), name, g.term(), g.term())
	case 12:
		return fmt.Sprintf("%s[k] := v if { some k, v in %s }", name, coll)
	case 13: // the base document by keys of every type
		return fmt.Sprintf("%s := data.%s[%s]", name, g.pick("d", "a", "d.x", "a[0]", "a[1]"), g.key())
	case 14:
		return fmt.Sprintf("default %s := %s\n%s := %s if %s", name, g.scalar(), name, g.term(), g.term())
	case 15: // the whole input as a value that outlives the evaluation
		return fmt.Sprintf("%s := {\"in\": input, \"k\": %s}", name, g.term())
	case 16: // a function under a reference head beside a rule of the same key (refused)
		switch g.n(6) {
		case 0:
			return fmt.Sprintf("%s.f(x) := x\n%s.g := %s", name, name, g.term())
		case 1:
			return fmt.Sprintf("%s.g := %s\n%s.f(x) := x", name, g.term(), name)
		}
	}
	return fmt.Sprintf("%s contains x if { some x in %s; %s }", name, coll, g.pick("x == 1", "is_string(x)", "x", "not x", "x != null"))
}

// policy generates a package data.fz of a few rules, a base document and an input.
func (g *grammar) policy() diffCase {
	var rules []string
	for range 1 + g.n(5) {
		rules = append(rules, g.rule())
		g.rules++
	}
	src := "package fz\n\n" + strings.Join(rules, "\n\n") + "\n"
	data := map[string]any{}
	doc := `{"d": ` + g.object(2) + `, "a": ` + g.array(1) + `}`
	if err := util.UnmarshalJSON([]byte(doc), &data); err != nil {
		panic(fmt.Sprintf("generated data %s: %v", doc, err))
	}
	in := ast.MustParseTerm(`{"m": ` + g.object(2) + `, "a": ` + g.array(1) + `, "k": ` + g.value(1) + `, "i": ` + g.value(0) + `}`)
	return diffCase{modules: map[string]string{"fz.rego": src}, version: ast.RegoV1, data: data, input: in, query: ast.MustParseRef("data.fz")}
}

// ruleName picks one generated rule.
func (g *grammar) ruleName() string { return fmt.Sprintf("r%d", g.n(max(g.rules, 1))) }
