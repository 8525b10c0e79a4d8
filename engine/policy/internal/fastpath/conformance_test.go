package fastpath

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/test/cases"
)

// opaModuleDir is the directory of the OPA module go.mod requires, in the module cache: its
// conformance cases are the ones of the OPA this build evaluates with, so an upgrade brings
// its new cases along.
func opaModuleDir(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/open-policy-agent/opa").Output()
	if err != nil {
		t.Fatalf("locating the OPA module (go list -m): %v", err)
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatal("go list -m: the OPA module is not in the module cache (go mod download)")
	}
	return dir
}

// conformanceCase turns one of OPA's conformance cases into a comparison: its modules, data
// and input, and its query when that is a rule or a package document (data.p.q, or x with
// x = data.p.q); ok is false for any other query.
func conformanceCase(tc cases.TestCase, v ast.RegoVersion) (diffCase, bool) {
	if len(tc.Env) > 0 || len(tc.Modules) == 0 {
		return diffCase{}, false
	}
	body, err := ast.ParseBody(tc.Query)
	if err != nil || len(body) != 1 {
		return diffCase{}, false
	}
	e := body[0]
	if e.Negated || len(e.With) > 0 {
		return diffCase{}, false
	}
	var target *ast.Term
	switch {
	case e.IsEquality() || e.IsAssignment():
		a, b := e.Operand(0), e.Operand(1)
		if _, ok := a.Value.(ast.Var); ok {
			a, b = b, a
		}
		if _, ok := b.Value.(ast.Var); !ok {
			return diffCase{}, false
		}
		target = a
	default:
		t, ok := e.Terms.(*ast.Term)
		if !ok {
			return diffCase{}, false
		}
		target = t
	}
	ref, ok := target.Value.(ast.Ref)
	if !ok {
		return diffCase{}, false
	}
	c := diffCase{modules: map[string]string{}, version: v, query: ref}
	for i, m := range tc.Modules {
		c.modules[filepath.Base(tc.Filename)+"-"+string(rune('a'+i))+".rego"] = m
	}
	if tc.ExperimentalKeywords {
		c.caps = ast.CapabilitiesForThisVersion(ast.CapabilitiesExperimentalKeywords(true))
	}
	if tc.Data != nil {
		c.data = *tc.Data
	}
	switch {
	case tc.InputTerm != nil:
		in, err := ast.ParseTerm(*tc.InputTerm)
		if err != nil {
			return diffCase{}, false
		}
		c.input = in
	case tc.Input != nil:
		v, err := ast.InterfaceToValue(*tc.Input)
		if err != nil {
			return diffCase{}, false
		}
		c.input = ast.NewTerm(v)
	}
	return c, true
}

// TestOPAConformance evaluates every case of OPA's own conformance suite (the v0 and v1
// directories of the OPA module go.mod requires) whose query names a rule or a package
// document, with the compiled evaluator wherever it accepts the package and with topdown,
// on the same compiled modules, data and input. Any difference in value, definedness or
// error class fails the test with the case's file and note.
//
//	go test -v -run TestOPAConformance ./engine/policy/internal/fastpath
func TestOPAConformance(t *testing.T) {
	root := filepath.Join(opaModuleDir(t), "v1", "test", "cases", "testdata")
	for _, dir := range []struct {
		name    string
		version ast.RegoVersion
	}{{"v1", ast.RegoV1}, {"v0", ast.RegoV0}} {
		set, err := cases.Load(filepath.Join(root, dir.name))
		if err != nil {
			t.Fatalf("loading OPA's conformance cases: %v", err)
		}
		var total, mapped, accepted, agree, diverge int
		for _, tc := range set.Cases {
			total++
			c, ok := conformanceCase(tc, dir.version)
			if !ok {
				continue
			}
			out, detail := compareBoth(c)
			if out == diffUnmapped {
				continue
			}
			mapped++
			if out == diffRefused {
				continue
			}
			accepted++
			switch out {
			case diffAgree:
				agree++
			case diffDiverge:
				diverge++
				rel, _ := filepath.Rel(root, tc.Filename)
				t.Errorf("%s %q: %s", rel, tc.Note, detail)
			}
		}
		t.Logf("%s: %d cases, %d mapped, %d accepted by the compiled evaluator, %d agree with topdown, %d diverge", dir.name, total, mapped, accepted, agree, diverge)
		if accepted < mapped/4 {
			t.Errorf("%s: the compiled evaluator accepted only %d of %d mapped cases: the harness maps them wrongly", dir.name, accepted, mapped)
		}
	}
}
