package policy_test

import (
	"context"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/hookwall/hookwall/engine/policy"
)

// shippedPolicyDirs are the policy directories that ship: the served one (the provider
// library, the ready route policies, the demo route, the sender ranges) and the examples,
// which are not served; a user copies one into theirs. `hookwall test policies
// examples/policies` runs their tests together, as this test does.
var shippedPolicyDirs = []string{"../../policies", "../../examples/policies"}

// shippedTests are the Rego tests this repository ships (by path prefix): the ones
// TestShippedRegoTests runs. A user's own policies beside them are compiled with them, but
// their tests may verify with the config's secrets, which `go test` does not have: they run with
// `hookwall test`, which loads them.
var shippedTests = []string{"../../policies/hookwall/", "../../policies/routes/providers/", "../../examples/policies/"}

func shipped(file string) bool {
	for _, p := range shippedTests {
		if strings.HasPrefix(filepath.ToSlash(file), p) {
			return true
		}
	}
	return false
}

// TestUsersTestsAreNotRun: a user's own test beside the shipped ones, which verifies with a
// secret only their config has, is left to `hookwall test`: go test runs what ships.
func TestUsersTestsAreNotRun(t *testing.T) {
	for file, want := range map[string]bool{
		"../../policies/hookwall/lib/providers/github_test.rego": true,
		"../../policies/routes/providers/stripe_test.rego":       true,
		"../../examples/policies/apikey_test.rego":               true,
		"../../policies/routes/mine_test.rego":                   false,
		"../../policies/acme/orders_test.rego":                   false,
	} {
		if shipped(file) != want {
			t.Errorf("shipped(%s) = %v, want %v", file, !want, want)
		}
	}
}

// TestShippedRegoTests runs every *_test.rego under the shipped policy directories with OPA's
// test runner and the production builtins (TesterBuiltins), compiled the way the gateway
// compiles: Rego v1, strict, unsafe builtins off, builtin errors raised. A failing or erroring
// Rego test fails this test.
func TestShippedRegoTests(t *testing.T) {
	ctx := context.Background()
	// Each directory must also compile on its own the way `hookwall test` loads it.
	for _, dir := range shippedPolicyDirs {
		if _, err := policy.Load(ctx, dir, policy.Options{IncludeTests: true}); err != nil {
			t.Fatalf("%s with tests does not compile: %v", dir, err)
		}
	}
	mods, data, err := policy.LoadTests(shippedPolicyDirs...)
	if err != nil {
		t.Fatal(err)
	}
	store := inmem.NewFromObject(data)
	for name := range mods {
		if strings.HasSuffix(name, "_test.rego") && !shipped(name) {
			t.Logf("%s: a test this repository does not ship: run it with hookwall test", name)
			delete(mods, name)
		}
	}
	builtins := policy.TesterBuiltins(nil, nil)
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool {
		return slices.Contains(policy.UnsafeBuiltins(), b.Name)
	})
	for _, b := range builtins {
		caps.Builtins = append(caps.Builtins, b.Decl)
	}
	comp := ast.NewCompiler().WithCapabilities(caps).WithStrict(true).WithDefaultRegoVersion(ast.RegoV1)
	r := tester.NewRunner().SetCompiler(comp).SetStore(store).SetModules(mods).
		AddCustomBuiltins(builtins).RaiseBuiltinErrors(true).SetTimeout(time.Minute)
	perFile := map[string]int{}
	err = storage.Txn(ctx, store, storage.TransactionParams{}, func(txn storage.Transaction) error {
		ch, err := r.RunTests(ctx, txn)
		if err != nil {
			return err
		}
		for res := range ch {
			perFile[res.Location.File]++
			switch {
			case res.Error != nil:
				t.Errorf("%s: %s.%s: error: %v", res.Location, res.Package, res.Name, res.Error)
			case res.Fail:
				t.Errorf("%s: %s.%s: FAIL", res.Location, res.Package, res.Name)
			case res.Skip:
				t.Logf("%s: %s.%s: skipped", res.Location, res.Package, res.Name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every _test.rego file must have run at least one test.
	for _, dir := range shippedPolicyDirs {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() && p != dir && policy.IsHidden(d.Name()) {
				return filepath.SkipDir // hidden, as the loader skips it
			}
			if err == nil && !d.IsDir() && policy.IsTestFile(p) && shipped(p) && perFile[p] == 0 {
				t.Errorf("%s: no test ran", p)
			}
			return nil
		})
	}
	t.Logf("ran %d Rego test files", len(perFile))
}
