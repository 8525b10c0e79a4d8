package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A config named without -c was ignored: "hookwall check other.toml" checked ./gateway.toml
// (the default) and, that one being fine, exited 0 over a broken other.toml. A command that
// takes no argument refuses one, as bad usage, and says the config goes with -c.
func TestCommandsRefuseStrayArguments(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"gateway.toml": `[[route]]
name = "hook"
path = "/hooks/hook"
upstream = "http://127.0.0.1:1"
policy = "routes.nowhere"
`,
	})
	broken := filepath.Join(dir, "gateway.toml")
	for _, args := range [][]string{
		{"check", "-c", "../../gateway.toml", broken},
		{"check", broken},
		{"run", "-c", broken, broken},
		{"capabilities", "-c", "../../gateway.toml", "out.json"},
	} {
		code, out, errs := runCLI(t, args...)
		if code != 2 || !strings.Contains(errs, "unexpected argument") {
			t.Errorf("hookwall %s: exit %d, want 2 naming the unexpected argument\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
		}
		if strings.HasSuffix(args[len(args)-1], ".toml") && !strings.Contains(errs, "-c "+args[len(args)-1]) {
			t.Errorf("hookwall %s: the message does not point at -c: %s", strings.Join(args, " "), errs)
		}
	}
}

// hookwall test traces every test to show a failure's expression; --format json printed
// those traces, the whole evaluation of every test (about 200 MB for the shipped provider
// library). Without -v it carries none, as opa test --format json; with -v the notes and
// failures, as the pretty report.
func TestHookwallTestJSONCarriesNoTraceWithoutV(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"policies/hook.rego":      webhookPolicy,
		"policies/hook_test.rego": failingTests,
	})
	code, out, errs := runCLI(t, "test", "--format", "json", filepath.Join(dir, "policies"))
	if code != 1 {
		t.Fatalf("exit %d, want 1 (one test fails)\n%s", code, errs)
	}
	var results []struct {
		Name  string            `json:"name"`
		Fail  bool              `json:"fail"`
		Trace []json.RawMessage `json:"trace"`
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("not a JSON report: %v\n%.2000s", err, out)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want 2:\n%.2000s", len(results), out)
	}
	for _, r := range results {
		if len(r.Trace) != 0 {
			t.Errorf("%s: %d trace events without -v (report %d bytes)", r.Name, len(r.Trace), len(out))
		}
	}
	code, out, _ = runCLI(t, "test", "--format", "json", "-v", filepath.Join(dir, "policies"))
	if code != 1 || !strings.Contains(out, `"Op": "Fail"`) {
		t.Errorf("-v: exit %d, want the failing expression's events:\n%.2000s", code, out)
	}
}

// A --run that is not a regular expression is bad usage (2), not a failed run (1).
func TestHookwallTestBadRunPatternIsUsage(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"policies/hook.rego":      webhookPolicy,
		"policies/hook_test.rego": failingTests,
	})
	code, _, errs := runCLI(t, "test", "--run", "(", filepath.Join(dir, "policies"))
	if code != 2 || !strings.Contains(errs, "--run") {
		t.Errorf("exit %d, want 2 naming --run: %q", code, errs)
	}
}

// An unknown --lang is bad usage (2), as an unknown flag is, not a failed write (1); nothing is
// written.
func TestFilterInitUnknownLangIsUsage(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "f")
	code, _, errs := runCLI(t, "filter", "init", dir, "--lang", "rust")
	if code != 2 || !strings.Contains(errs, `--lang "rust"`) {
		t.Errorf("exit %d, want 2 naming --lang: %q", code, errs)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s was written", dir)
	}
}

// ranges update wrote its default, policies/ranges/data.json, under the working directory
// whatever that was, making the directories, and reported success: run from elsewhere, no
// gateway read what it wrote. And -o naming a directory failed with a rename error about a
// temporary file made in the directory above. Both are refused before anything is fetched.
func TestRangesUpdateRefusesAPathNoGatewayReads(t *testing.T) {
	srv, _ := rangesServer(t, map[string][2]string{"/meta": {"", fakeMeta}, "/ips": {"", fakeStripe}})
	urls := []string{"--github-url", srv.URL + "/meta", "--stripe-url", srv.URL + "/ips"}
	t.Chdir(t.TempDir())
	code, _, errs := runCLI(t, append([]string{"ranges", "update"}, urls...)...)
	if code != 2 || !strings.Contains(errs, "no policies directory here") {
		t.Errorf("default path without a policies directory: exit %d, %q", code, errs)
	}
	if _, err := os.Stat("policies"); err == nil {
		t.Errorf("a policies directory was made in the working directory")
	}
	// With one, the default is written (its ranges directory made).
	if err := os.Mkdir("policies", 0o755); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCLI(t, append([]string{"ranges", "update"}, urls...)...); code != 0 {
		t.Errorf("default path under a policies directory: exit %d, %q", code, errs)
	}
	if _, err := os.Stat(defaultRangesFile); err != nil {
		t.Errorf("default path under a policies directory: %v", err)
	}
	dir := t.TempDir()
	code, _, errs = runCLI(t, append([]string{"ranges", "update", "-o", dir}, urls...)...)
	if code != 2 || !strings.Contains(errs, "is a directory") {
		t.Errorf("-o DIR: exit %d, %q", code, errs)
	}
}
