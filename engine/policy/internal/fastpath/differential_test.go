package fastpath

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// diffCase is one query both evaluators answer: the rule (or package document) at query,
// over modules compiled together, with a base document and an input.
type diffCase struct {
	modules map[string]string
	version ast.RegoVersion
	caps    *ast.Capabilities
	data    map[string]any // nil: no base document
	input   *ast.Term      // nil: no input
	query   ast.Ref        // data.pkg or data.pkg.rule
}

// diffOutcome is what comparing the two evaluators found.
type diffOutcome int

const (
	diffUnmapped diffOutcome = iota // the modules do not compile, or the query names no package or rule
	diffRefused                     // the compiled evaluator refuses the package (topdown keeps it)
	diffAgree                       // both answered alike
	diffDiverge                     // the answers differ: value, definedness or error class
)

// compareBoth compiles c.modules once and evaluates c.query with the compiled evaluator and
// with topdown in strict built-in error mode, on the same compiler, data and input. detail
// says how they differ (or why the case is unmapped or refused).
func compareBoth(c diffCase) (diffOutcome, string) {
	comp, p, data, out, detail := compileCase(c)
	if p == nil {
		return out, detail
	}
	var in ast.Value
	if c.input != nil {
		in = c.input.Value
	}
	fv, ferr := evalCompiled(p, in)
	tv, terr := evalTopdown(comp, c.query, data, c.input)
	return compareResults(fv, ferr, tv, terr)
}

// compileCase compiles c's modules and, when the compiled evaluator accepts the queried
// package, the program (else nil, with the outcome and why), and the base document both
// evaluators read.
func compileCase(c diffCase) (*ast.Compiler, *Program, map[string]any, diffOutcome, string) {
	mods := make(map[string]*ast.Module, len(c.modules))
	names := make([]string, 0, len(c.modules))
	for name := range c.modules {
		names = append(names, name)
	}
	sort.Strings(names)
	po := ast.ParserOptions{RegoVersion: c.version, Capabilities: c.caps}
	for _, name := range names {
		m, err := ast.ParseModuleWithOpts(name, c.modules[name], po)
		if err != nil {
			return nil, nil, nil, diffUnmapped, err.Error()
		}
		mods[name] = m
	}
	comp := ast.NewCompiler()
	if c.caps != nil {
		comp = comp.WithCapabilities(c.caps)
	}
	comp.Compile(mods)
	if comp.Failed() {
		return nil, nil, nil, diffUnmapped, comp.Errors.Error()
	}
	pkg, only, ok := splitQuery(comp, c.query)
	if !ok {
		return nil, nil, nil, diffUnmapped, "the query names no package document or rule"
	}
	caps := c.caps
	if caps == nil {
		caps = ast.CapabilitiesForThisVersion()
	}
	o := Options{Only: only, Data: c.data, Decls: map[string]*ast.Builtin{}}
	for _, b := range caps.Builtins {
		o.Decls[b.Name] = b
	}
	if o.Data == nil {
		o.Data = map[string]any{}
	}
	p, err := Compile(comp, pkg, o)
	if err != nil {
		return nil, nil, nil, diffRefused, err.Error()
	}
	return comp, p, o.Data, diffAgree, ""
}

// compareResults compares the two evaluators' answers.
func compareResults(fv *ast.Term, ferr error, tv *ast.Term, terr error) (out diffOutcome, detail string) {
	defer func() {
		// A compiled result that points into the released run has lost its value.
		if x := recover(); x != nil {
			out, detail = diffDiverge, fmt.Sprintf("compiled result unreadable after the evaluation: %v", x)
		}
	}()
	if fc, tc := errorClass(ferr), errorClass(terr); fc != tc {
		return diffDiverge, fmt.Sprintf("compiled: %s (%v); topdown: %s (%v)", fc, ferr, tc, terr)
	}
	if ferr != nil {
		return diffAgree, ""
	}
	switch {
	case (fv == nil) != (tv == nil):
		return diffDiverge, fmt.Sprintf("compiled: %v; topdown: %v (nil: undefined)", fv, tv)
	case fv != nil && !fv.Equal(tv):
		return diffDiverge, fmt.Sprintf("compiled: %v; topdown: %v", fv, tv)
	}
	return diffAgree, ""
}

// splitQuery finds the package the query names (its longest package prefix) and, when the
// query is one key longer, the rule.
func splitQuery(c *ast.Compiler, q ast.Ref) (pkg, only string, ok bool) {
	if len(q) < 2 || !q[0].Equal(ast.DefaultRootDocument) {
		return "", "", false
	}
	for _, t := range q[1:] {
		if _, ok := t.Value.(ast.String); !ok {
			return "", "", false
		}
	}
	for n := len(q); n >= 2; n-- {
		for _, m := range c.Modules {
			if !m.Package.Path.Equal(q[:n]) {
				continue
			}
			pkg = strings.TrimPrefix(q[:n].String(), "data.")
			switch len(q) - n {
			case 0:
				return pkg, "", true
			case 1:
				return pkg, string(q[n].Value.(ast.String)), true
			}
			return "", "", false
		}
	}
	return "", "", false
}

// evalCompiled evaluates p, turning a panic into an error: a panic is a divergence too.
func evalCompiled(p *Program, in ast.Value) (v *ast.Term, err error) {
	defer func() {
		if x := recover(); x != nil {
			v, err = nil, fmt.Errorf("compiled evaluator panicked: %v", x)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.Eval(ctx, in, nil, nil)
}

// evalTopdown evaluates the query with OPA's rego package, as hookwall's topdown path does
// (strict built-in errors, terms kept as AST).
func evalTopdown(c *ast.Compiler, q ast.Ref, data map[string]any, input *ast.Term) (*ast.Term, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts := []func(*rego.Rego){
		rego.Compiler(c),
		rego.Store(inmem.NewFromObject(data)),
		rego.Query(q.String()),
		rego.StrictBuiltinErrors(true),
		rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }),
	}
	if input != nil {
		opts = append(opts, rego.ParsedInput(input.Value))
	}
	rs, err := rego.New(opts...).Eval(ctx)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return nil, fmt.Errorf("topdown returned %T", rs[0].Expressions[0].Value)
	}
	return t, nil
}

// errorClass is what the comparison asks of an error: none, or topdown's error code (a
// conflict, a built-in's error, a type error, cancellation); an error of another type is
// "error".
func errorClass(err error) string {
	if err == nil {
		return "none"
	}
	if te, ok := errors.AsType[*topdown.Error](err); ok {
		return te.Code
	}
	return "error"
}

// TestNumbersBeyondFloat64: OPA hashes a number past float64's range by its spelling, so
// topdown's rule index never offers a definition comparing with 1e400 to an input of
// 10e399 (equal, hashed apart), and the definition yields nothing. The compiled evaluator
// refuses such packages rather than hold where topdown does not.
func TestNumbersBeyondFloat64(t *testing.T) {
	for _, c := range []struct{ src, q, in string }{
		{"package p\nr if input.x == 1e400", "data.p.r", `{"x": 10e399}`},
		{"package p\nr if input.x = 1e400", "data.p.r", `{"x": 10e399}`},
		{"package p\nr if input.x in [1e400]", "data.p.r", `{"x": 10e399}`},
		{"package p\nr if input.xs[_] == 1e400", "data.p.r", `{"xs": [10e399]}`},
		{"package p\nr if 1e400 in input.xs", "data.p.r", `{"xs": [10e399]}`},
		{"package p\nf(x) if x == 1e400\nr if f(input.x)", "data.p.r", `{"x": 10e399}`},
		{"package p\nr contains \"a\" if input.x == 1e400", "data.p.r", `{"x": 10e399}`},
		{"package p\nr[\"a\"] := 1 if input.x == 1e400", "data.p.r", `{"x": 10e399}`},
		{"package p\nr := 1 if input.x == 1 else := 2 if input.x == 1e400", "data.p.r", `{"x": 10e399}`},
	} {
		dc := diffCase{modules: map[string]string{"p.rego": c.src}, version: ast.RegoV1,
			query: ast.MustParseRef(c.q), input: ast.MustParseTerm(c.in)}
		if out, detail := compareBoth(dc); out != diffRefused && out != diffAgree {
			t.Errorf("%q on %s: %s", c.src, c.in, detail)
		}
	}
	// A number within range still compiles.
	dc := diffCase{modules: map[string]string{"p.rego": "package p\nr if input.x == 1e300"}, version: ast.RegoV1,
		query: ast.MustParseRef("data.p.r"), input: ast.MustParseTerm(`{"x": 10e299}`)}
	if out, detail := compareBoth(dc); out != diffAgree {
		t.Errorf("1e300: %s", detail)
	}
}
