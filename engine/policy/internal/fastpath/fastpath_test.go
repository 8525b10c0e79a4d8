package fastpath

import (
	"context"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/types"
)

// counted is a custom built-in that counts its calls: how often a function's body ran.
const counted = "test.counted"

func compileModules(t *testing.T, srcs map[string]string, pkg string, o Options) (*Program, error) {
	t.Helper()
	mods := map[string]*ast.Module{}
	for name, src := range srcs {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		mods[name] = m
	}
	decl := &ast.Builtin{Name: counted, Decl: types.NewFunction(types.Args(types.A), types.A)}
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = append(caps.Builtins, decl)
	c := ast.NewCompiler().WithCapabilities(caps)
	c.Compile(mods)
	if c.Failed() {
		t.Fatal(c.Errors)
	}
	o.Decls = map[string]*ast.Builtin{counted: decl}
	for _, b := range ast.CapabilitiesForThisVersion().Builtins {
		o.Decls[b.Name] = b
	}
	return Compile(c, pkg, o)
}

// TestMemoizesCalls: a function's body runs once per evaluation and distinct arguments, past
// the scanned memo's size as well as within it.
func TestMemoizesCalls(t *testing.T) {
	calls := 0
	o := Options{Builtins: map[string]topdown.BuiltinFunc{counted: func(_ topdown.BuiltinContext, args []*ast.Term, iter func(*ast.Term) error) error {
		calls++
		return iter(args[0])
	}}}
	for _, n := range []int{3, memoScan, 5 * memoScan} {
		p, err := compileModules(t, map[string]string{"p.rego": `package p
f(x) := test.counted(x)
g(x) := f(x) + f(x)
r := [g(x) | some x in numbers] if numbers := input.xs
s := [f(x) | some x in input.xs]
`}, "p", o)
		if err != nil {
			t.Fatal(err)
		}
		xs := make([]*ast.Term, n)
		for i := range xs {
			xs[i] = ast.IntNumberTerm(i)
		}
		in := ast.NewObject(ast.Item(ast.StringTerm("xs"), ast.ArrayTerm(xs...)))
		for range 2 {
			calls = 0
			v, err := p.Eval(context.Background(), in, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			if calls != n {
				t.Errorf("%d distinct arguments: the body ran %d times (result %v)", n, calls, v)
			}
		}
	}
}

// TestBaseDocument: a data reference that names no rule reads the base document given in
// Options.Data (undefined where it has nothing), and is refused without it; a reference to a
// document holding packages, or to a rule that data overlaps, is refused.
func TestBaseDocument(t *testing.T) {
	srcs := map[string]string{
		"p.rego": `package p
url := data.cfg.url
missing := data.cfg.nothing.deeper
hosts contains h if some h in data.cfg.hosts
`,
		"lib.rego": `package lib
x := 1
`,
	}
	data := map[string]any{"cfg": map[string]any{"url": "https://example.com", "hosts": []any{"a", "b"}}}
	if _, err := compileModules(t, srcs, "p", Options{}); err == nil || !strings.Contains(err.Error(), "p.rego:") || !strings.Contains(err.Error(), "reads the base document") {
		t.Errorf("without Options.Data: %v, want refused with the location", err)
	}
	p, err := compileModules(t, srcs, "p", Options{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Eval(context.Background(), nil, nil, nil)
	want := ast.MustParseTerm(`{"url": "https://example.com", "hosts": {"a", "b"}}`)
	if err != nil || !v.Equal(want) {
		t.Errorf("got %v, %v; want %v", v, err, want)
	}
	for name, src := range map[string]string{
		"package document": "package q\nallow if count(data.lib) > 0",
		"data above rules": "package q\nallow if count(data.lib) > 0",
		"data overlaps":    "package q\nallow if data.lib.x == 1",
		"data overlaps up": "package q\nallow if data.lib.x == 1",
	} {
		d := map[string]any{"lib": map[string]any{"x": 2}}
		if name == "data overlaps up" {
			d = map[string]any{"lib": "a string"}
		}
		lib := srcs["lib.rego"]
		if name == "data above rules" {
			lib = "package lib.sub\nx := 1\n"
		}
		_, err := compileModules(t, map[string]string{"q.rego": src, "lib.rego": lib}, "q", Options{Data: d, Only: "allow"})
		if err == nil || !strings.Contains(err.Error(), "q.rego:2:") {
			t.Errorf("%s: %v, want refused with the location", name, err)
		}
	}
}

// TestCallersBuiltinKeepsItsName: a built-in the caller implements under a standard name is
// called as given, not answered by the quick path of the standard one.
func TestCallersBuiltinKeepsItsName(t *testing.T) {
	calls := 0
	o := Options{Builtins: map[string]topdown.BuiltinFunc{"net.cidr_contains": func(_ topdown.BuiltinContext, _ []*ast.Term, iter func(*ast.Term) error) error {
		calls++
		return iter(ast.BooleanTerm(false))
	}}}
	p, err := compileModules(t, map[string]string{"p.rego": `package p
allow if net.cidr_contains("10.0.0.0/8", "10.1.2.3")
`}, "p", o)
	if err != nil {
		t.Fatal(err)
	}
	v, err := p.Eval(context.Background(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if calls != 1 || v.Value.(ast.Object).Get(ast.StringTerm("allow")) != nil {
		t.Errorf("the caller's net.cidr_contains was called %d times and the document is %v; want once, allow undefined", calls, v)
	}
}
