package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// builtBinary is the hookwall binary, built once per test binary for the tests that run it.
var builtBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "hookwall-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "hookwall")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// hookwallBinary builds (once) and returns the real binary.
func hookwallBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, err := builtBinary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// needTools skips when a starter's toolchain is missing, except in CI, which installs them.
func needTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed; .ci/run installs it", tool)
			}
			t.Skipf("%s is not installed", tool)
		}
	}
}

// TestFilterKitStarters writes each language's starter with filter init, builds it with that
// language's real toolchain, and runs its own test (make test: hookwall filter test on the
// sample requests, expecting next and deny). Then filter test's report is checked against what
// the starter does.
func TestFilterKitStarters(t *testing.T) {
	tools := map[string][]string{
		"wat":            {"make", "wat2wasm"},
		"c":              {"make", "clang", "wasm-ld"},
		"assemblyscript": {"make", "npm", "node"},
		"go":             {"make", "go"},
	}
	for _, lang := range []string{"wat", "c", "assemblyscript", "go"} {
		t.Run(lang, func(t *testing.T) {
			needTools(t, tools[lang]...)
			bin := hookwallBinary(t)
			dir := filepath.Join(t.TempDir(), "tenant-guard")
			code, out, errs := runCLI(t, "filter", "init", dir, "--lang", lang)
			if code != 0 {
				t.Fatalf("filter init: exit %d %s", code, errs)
			}
			if !strings.Contains(out, "make build test") {
				t.Errorf("filter init does not say what to run: %s", out)
			}
			cmd := exec.Command("make", "build", "test", "HOOKWALL="+bin)
			cmd.Dir = dir
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("make build test: %v\n%s", err, b)
			}
			wasm := filepath.Join(dir, "filter.wasm")
			code, out, errs = runCLI(t, "filter", "test", wasm, "--request", filepath.Join(dir, "requests", "ok.http"))
			if code != 0 {
				t.Fatalf("filter test: exit %d %s", code, errs)
			}
			var r filterTestOutput
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if r.Outcome != "next" || r.Labels["tenant"] != "acme" || r.Forwarded == nil || r.Forwarded.Set["X-Starter-Filter"] != lang {
				t.Fatalf("ok.http: %s", out)
			}
			code, out, _ = runCLI(t, "filter", "test", wasm, "--request", filepath.Join(dir, "requests", "missing-tenant.http"), "--expect", "next")
			if code != 1 || !strings.Contains(out, `"outcome": "deny"`) || !strings.Contains(out, "missing X-Tenant") {
				t.Fatalf("--expect next on a denied request: exit %d %s", code, out)
			}
			if code, _, errs := runCLI(t, "filter", "init", dir, "--lang", lang); code != 1 || !strings.Contains(errs, "not empty") {
				t.Fatalf("init over an existing starter: exit %d %s", code, errs)
			}
		})
	}
}

// TestFilterTestReportsChanges runs filter test on real filters: tiny (a header and a label),
// redact (the forwarded body), respbody (the upstream's answer, in the response phase) and one
// that traps.
func TestFilterTestReportsChanges(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"req.http":   "POST /hooks/x HTTP/1.1\nHost: h\nContent-Type: application/json\n\n{\"email\":\"alice@example.com\"}",
		"trap.http":  "POST /hooks/x HTTP/1.1\nHost: h\nX-Trap: 1\n\n{}",
		"resp.http":  "HTTP/1.1 200 OK\nContent-Type: text/plain\nContent-Length: 8\n\noriginal",
		"cfg-buffer": "\x01",
	})
	test := func(wasm string, args ...string) (int, filterTestOutput, string) {
		t.Helper()
		code, out, errs := runCLI(t, append([]string{"filter", "test", wasm}, args...)...)
		var r filterTestOutput
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%s: not JSON (%v): %s %s", wasm, err, out, errs)
		}
		return code, r, out + errs
	}
	req := filepath.Join(dir, "req.http")

	code, r, out := test("../../examples/filters/tiny/tiny.wasm", "--request", req, "--route", "github", "--expect", "next")
	if code != 0 || r.Forwarded == nil || r.Forwarded.Set["X-Hookwall-Route"] != "github" || r.Labels["tiny"] != "seen" {
		t.Fatalf("tiny adds X-Hookwall-Route and the label tiny=seen: exit %d %s", code, out)
	}
	code, r, out = test("../../examples/filters/redact/redact.wasm", "--request", req)
	if code != 0 || r.Forwarded == nil || r.Forwarded.Body == nil || r.Forwarded.Body.To != `{"email":"*****@*******.com"}` || r.Labels["redacted"] != "1" {
		t.Fatalf("redact masks the forwarded body: exit %d %s", code, out)
	}
	code, r, out = test("../../engine/filter/testdata/respbody.wasm", "--request", req, "--response", filepath.Join(dir, "resp.http"), "--config-file", filepath.Join(dir, "cfg-buffer"))
	if code != 0 || r.ResponsePhase == nil || r.ResponsePhase.Changes.Body == nil || r.ResponsePhase.Changes.Body.From != "original" || r.ResponsePhase.Changes.Body.To != "replaced!" {
		t.Fatalf("respbody replaces the upstream's body: exit %d %s", code, out)
	}
	code, r, out = test("../../engine/filter/testdata/unreachable.wasm", "--request", filepath.Join(dir, "trap.http"))
	if code != 1 || r.Outcome != "error" || !strings.Contains(r.Error, "unreachable") {
		t.Fatalf("a trapping filter: exit %d %s", code, out)
	}
}
