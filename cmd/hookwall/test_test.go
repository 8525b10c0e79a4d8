package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/gateway"
	"github.com/hookwall/hookwall/engine/policy"
)

// webhookPolicy verifies a signature with the hookwall builtin.
const webhookPolicy = `package routes.hook

sig := hookwall.webhook.verify("github", input.request, {"secret": "hook"})

default allow := false

allow if sig.valid

deny contains sprintf("signature: %s", [sig.reason]) if not sig.valid

status := 401 if not sig.valid
`

// webhookTests mock the builtin (as a function) and also call the real one: signed with the
// secret the config names, through Rego's own HMAC.
const webhookTests = `package routes.hook_test

import data.routes.hook

valid(_, _, _) := {"valid": true, "reason": ""}

mismatch(_, _, _) := {"valid": false, "reason": "signature mismatch"}

test_mocked_valid_allows if {
	hook.allow with hookwall.webhook.verify as valid with input as {"request": {}}
}

test_mocked_mismatch_denies_401 if {
	not hook.allow with hookwall.webhook.verify as mismatch with input as {"request": {}}
	hook.status == 401 with hookwall.webhook.verify as mismatch with input as {"request": {}}
	hook.deny == {"signature: signature mismatch"} with hookwall.webhook.verify as mismatch with input as {"request": {}}
}

test_real_builtin_with_the_config_secret if {
	body := "{\"zen\":\"ok\"}"
	sig := concat("", ["sha256=", crypto.hmac.sha256(body, "test-secret")])
	hook.allow with input as {"request": {"method": "POST", "headers": {"x-hub-signature-256": sig}, "body": body}}
}
`

const failingTests = `package routes.hook_test

import data.routes.hook

test_passes if {
	not hook.allow with hookwall.webhook.verify as {"valid": false, "reason": "x"} with input as {"request": {}}
}

test_fails_on_purpose if {
	hook.allow with hookwall.webhook.verify as {"valid": false, "reason": "x"} with input as {"request": {}}
}
`

const testConfig = `
[secrets]
hook = {file = "hook.secret"}

[[route]]
name = "hook"
path = "/hooks/hook"
upstream = "http://127.0.0.1:1"
policy = "routes.hook"
`

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHookwallTestPasses(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"gateway.toml":              testConfig,
		"hook.secret":               "test-secret\n",
		"policies/hook.rego":        webhookPolicy,
		"policies/hook_test.rego":   webhookTests,
		"policies/other/notes.json": `{"not": "data"}`,
	})
	code, out, errs := runCLI(t, "test", "-c", filepath.Join(dir, "gateway.toml"))
	if code != 0 || strings.TrimSpace(out) != "PASS: 3/3" {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	// -v lists each test as opa test does, and flags may follow the path.
	code, out, _ = runCLI(t, "test", filepath.Join(dir, "policies"), "-c", filepath.Join(dir, "gateway.toml"), "-v")
	for _, name := range []string{"test_mocked_valid_allows", "test_mocked_mismatch_denies_401", "test_real_builtin_with_the_config_secret"} {
		if !regexp.MustCompile(`data\.routes\.hook_test\.` + name + `: PASS \(`).MatchString(out) {
			t.Errorf("-v output lacks %s: PASS:\n%s", name, out)
		}
	}
	if code != 0 {
		t.Errorf("-v: exit %d", code)
	}
	// --run picks tests by name.
	if code, out, _ := runCLI(t, "test", "--run", "mocked", "-c", filepath.Join(dir, "gateway.toml")); code != 0 || strings.TrimSpace(out) != "PASS: 2/2" {
		t.Errorf("--run: exit %d, %q", code, out)
	}
}

func TestHookwallTestWithoutTheSecretFailsTheUnmockedTest(t *testing.T) {
	// Without a config the real builtin has no secret: the mocked tests pass, the real one
	// does not, and it is named.
	dir := writeTree(t, map[string]string{
		"policies/hook.rego":      webhookPolicy,
		"policies/hook_test.rego": webhookTests,
	})
	code, _, errs := runCLI(t, "test", "-c", filepath.Join(dir, "missing.toml"), filepath.Join(dir, "policies"))
	if code != 1 || !strings.Contains(errs, "missing.toml") {
		t.Fatalf("an explicit config that does not load: exit %d, stderr %q", code, errs)
	}
	code, out, _ := runCLI(t, "test", filepath.Join(dir, "policies"))
	if code != 1 || !strings.Contains(out, "test_real_builtin_with_the_config_secret") || !strings.Contains(out, "PASS: 2/3") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestHookwallTestFails(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"policies/hook.rego":      webhookPolicy,
		"policies/hook_test.rego": failingTests,
	})
	code, out, _ := runCLI(t, "test", filepath.Join(dir, "policies"))
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"data.routes.hook_test.test_fails_on_purpose: FAIL",
		"hook_test.rego:10", // the failing expression's line
		"PASS: 1/2", "FAIL: 1/2",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "test_passes: PASS") {
		t.Errorf("without -v a passing test is not listed:\n%s", out)
	}
}

func TestHookwallTestCoverage(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"policies/hook.rego": webhookPolicy,
		"policies/hook_test.rego": `package routes.hook_test

import data.routes.hook

test_valid if {
	hook.allow with hookwall.webhook.verify as {"valid": true, "reason": ""} with input as {"request": {}}
}
`,
	})
	code, out, _ := runCLI(t, "test", "--coverage", filepath.Join(dir, "policies"))
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	// The default, deny and status (lines 5, 9 and 11) never run: the test only exercises a
	// valid signature.
	m := regexp.MustCompile(`(?m)^COVERAGE: (\d+\.\d+)% \((\d+) of (\d+) lines\)$`).FindStringSubmatch(out)
	if m == nil || m[1] == "100.00" {
		t.Fatalf("coverage summary:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)hook\.rego\s+\d+\.\d+%\s+not covered: 5, 9, 11$`).MatchString(out) {
		t.Errorf("per-file line:\n%s", out)
	}
	if strings.Contains(out, "hook_test.rego") {
		t.Errorf("test files are not part of the coverage:\n%s", out)
	}
	code, _, errs := runCLI(t, "test", "--coverage", "--threshold", "99", filepath.Join(dir, "policies"))
	if code != 1 || !strings.Contains(errs, "below the threshold") {
		t.Fatalf("threshold: exit %d, %q", code, errs)
	}
}

func TestHookwallTestUsage(t *testing.T) {
	dir := writeTree(t, map[string]string{"policies/hook.rego": webhookPolicy})
	if code, _, errs := runCLI(t, "test", filepath.Join(dir, "policies")); code != 1 || !strings.Contains(errs, "no *_test.rego") {
		t.Errorf("no tests: exit %d %q", code, errs)
	}
	if code, _, _ := runCLI(t, "test", "--format", "xml", filepath.Join(dir, "policies")); code != 2 {
		t.Errorf("bad format: exit %d", code)
	}
	if code, _, errs := runCLI(t, "test", filepath.Join(dir, "nowhere")); code != 1 || !strings.Contains(errs, "nowhere") {
		t.Errorf("missing path: exit %d %q", code, errs)
	}
	broken := writeTree(t, map[string]string{"p/x_test.rego": "package x_test\n\ntest_a if {\n\tinput.x = = 1\n}\n"})
	if code, _, errs := runCLI(t, "test", filepath.Join(broken, "p")); code != 1 || !strings.Contains(errs, "x_test.rego:4") {
		t.Errorf("parse error: exit %d %q", code, errs)
	}
}

func TestHookwallTestShippedPolicies(t *testing.T) {
	// The policies that ship pass their own tests through the command.
	code, out, errs := runCLI(t, "test", "-c", "../../gateway.toml")
	if code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "PASS: ") {
		t.Fatalf("exit %d\n%s\n%s", code, out, errs)
	}
	// The example policies are not served; their tests run beside the served directory,
	// whose sender ranges ip_allowlist reads.
	code, out, errs = runCLI(t, "test", "../../policies", "../../examples/policies", "-v")
	if code != 0 || !strings.Contains(out, "data.examples.jwt_test.test_missing_scope: PASS") || !strings.Contains(out, "\nPASS: ") {
		t.Fatalf("examples: exit %d\n%s\n%s", code, out, errs)
	}
}

// TestPolicyLoadersAgree: serving (policy.Load), `hookwall test` and test_on_reload (here
// through gateway.Check) read one tree by one rule. The root is a hidden directory, read
// because it is named explicitly; below it, a hidden directory of failing tests, a hidden
// file that does not parse and a JSON file that is not data are skipped by all three.
func TestPolicyLoadersAgree(t *testing.T) {
	const flipTest = "package routes.flip_test\n\nimport data.routes.flip\n\ntest_allows if flip.allow\n"
	dir := writeTree(t, map[string]string{
		"gateway.toml": `
[log]
decisions = "off"
[policies]
dir = ".policies"
test_on_reload = true
[[route]]
name = "flip"
path = "/flip"
upstream = "http://127.0.0.1:1"
policy = "routes.flip"
`,
		".policies/data.json":                  `{"config": {"open": true}}`,
		".policies/fixture.json":               `{"config": {"open": false}}`,
		".policies/routes/flip.rego":           "package routes.flip\n\nallow if data.config.open\n",
		".policies/routes/flip_test.rego":      flipTest,
		".policies/routes/.draft.rego":         "package routes.draft\n\nallow if {\n",
		".policies/routes/.draft_test.rego":    "package routes.draft_test\n\ntest_hidden_file if false\n",
		".policies/.vectors/vectors_test.rego": "package vectors_test\n\ntest_hidden_dir if false\n",
	})
	root := filepath.Join(dir, ".policies")
	cfg := filepath.Join(dir, "gateway.toml")
	check := func(wantTests string) {
		t.Helper()
		set, err := policy.Load(context.Background(), root, policy.Options{})
		if err != nil {
			t.Fatalf("policy.Load: %v", err)
		}
		if got := set.Files(); len(got) != 1 || got[0] != filepath.Join(root, "routes", "flip.rego") {
			t.Errorf("policy.Load serves %v, want only routes/flip.rego", got)
		}
		code, out, errs := runCLI(t, "test", "-c", cfg)
		if wantTests == "pass" && (code != 0 || strings.TrimSpace(out) != "PASS: 1/1") {
			t.Errorf("hookwall test: exit %d\n%s\n%s", code, out, errs)
		}
		if wantTests == "fail" && (code != 1 || !strings.Contains(out, "test_allows: FAIL") || strings.Contains(out, "hidden")) {
			t.Errorf("hookwall test: exit %d, want only test_allows failing\n%s\n%s", code, out, errs)
		}
		c, err := gateway.Check(context.Background(), cfg, gateway.Options{Logger: slog.New(slog.DiscardHandler)})
		switch {
		case wantTests == "pass" && err != nil:
			t.Errorf("test_on_reload: %v", err)
		case wantTests == "fail" && (err == nil || !strings.Contains(err.Error(), "1 of 1 failed") || !strings.Contains(err.Error(), "flip_test.rego:5: test_allows: failed")):
			t.Errorf("test_on_reload: %v, want only test_allows failing", err)
		}
		if c != nil {
			c.Close()
		}
	}
	check("pass")
	// The test beside the policy is read by both test runners: broken, both name it.
	if err := os.WriteFile(filepath.Join(root, "routes", "flip_test.rego"), []byte(strings.Replace(flipTest, "if flip.allow", "if not flip.allow", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	check("fail")
}

// TestHookwallTestRefusesABrokenImplicitConfig: with no -c, a ./gateway.toml that is there but
// does not load is an error, as for capabilities: its secrets and allow_builtins would be
// dropped without a word.
func TestHookwallTestRefusesABrokenImplicitConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.WriteFile(filepath.Join(dir, "gateway.toml"), []byte("[server\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"test"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "gateway.toml:2") {
		t.Fatalf("a broken ./gateway.toml: exit %d, stderr %q; want exit 1 naming the file", code, &errb)
	}
}
