package gateway

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/policy"
)

// runPolicyTests runs the *_test.rego files of the policy source ([policies] dir, or the
// bundle when brev is set) with the production builtins and the config's secrets (secrets
// when set, else read). It fails when a test fails or errors, naming each by file:line. No
// test files is a pass.
func (g *Gateway) runPolicyTests(ctx context.Context, cfg *config.Config, brev *bundleRev, secrets *config.Secrets) error {
	var err error
	if secrets == nil {
		if secrets, err = cfg.ResolveSecrets(g.o.Getenv); err != nil {
			return err
		}
	}
	var (
		mods map[string]*ast.Module
		data map[string]any
	)
	if brev != nil {
		mods, data, err = brev.testModules()
	} else {
		mods, data, err = policy.LoadTests(cfg.Policies.Dir)
	}
	if err != nil {
		return fmt.Errorf("policy tests: %w", err)
	}
	if !policy.HasTests(mods) {
		return nil
	}
	runner, err := policy.NewTestRunner(cfg.Policies.AllowBuiltins, secrets, g.o.Now, data)
	if err != nil {
		return err
	}
	ch, err := runner.SetParallel(2).SetModules(mods).RunTests(ctx, nil)
	if err != nil {
		return fmt.Errorf("policy tests: %w", err)
	}
	var failed []string
	total := 0
	for r := range ch {
		total++
		if !r.Fail && r.Error == nil {
			continue
		}
		at := r.Package + "." + r.Name
		if r.Location != nil {
			at = fmt.Sprintf("%s:%d: %s", r.Location.File, r.Location.Row, r.Name)
		}
		if r.Error != nil {
			failed = append(failed, fmt.Sprintf("%s: error: %v", at, r.Error))
		} else {
			failed = append(failed, at+": failed")
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("policy tests: %w", err)
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		return fmt.Errorf("policy tests: %d of %d failed (test_on_reload refuses the change):\n  %s", len(failed), total, strings.Join(failed, "\n  "))
	}
	g.log.Debug("policy tests passed", "tests", total)
	return nil
}
