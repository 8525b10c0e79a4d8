package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
)

// TestCapabilitiesLetOPACheckHookwallPolicies writes the capabilities file and hands it to
// OPA's own loader and compiler, as `opa check --capabilities` does: the shipped policies,
// which call hookwall's builtins, compile; a policy that calls an unsafe builtin does not,
// unless the config re-enables it.
func TestCapabilitiesLetOPACheckHookwallPolicies(t *testing.T) {
	dir := t.TempDir()
	capsFile := filepath.Join(dir, "hookwall.capabilities.json")
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"capabilities", "-c", "../../gateway.toml", "-o", capsFile}, io.Discard, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	caps := loadCaps(t, capsFile)

	res, err := loader.NewFileLoader().WithRegoVersion(ast.RegoV1).Filtered([]string{"../../policies"}, func(_ string, info os.FileInfo, _ int) bool {
		return !info.IsDir() && !strings.HasSuffix(info.Name(), ".rego") // policies only, as opa check
	})
	if err != nil {
		t.Fatal(err)
	}
	mods := res.ParsedModules()
	if len(mods) == 0 {
		t.Fatal("no policies loaded")
	}
	calls := 0
	for _, m := range mods {
		ast.WalkTerms(m, func(x *ast.Term) bool {
			if r, ok := x.Value.(ast.Ref); ok && strings.HasPrefix(r.String(), "hookwall.") {
				calls++
			}
			return false
		})
	}
	if calls == 0 {
		t.Fatal("the shipped policies call no hookwall builtin: the test proves nothing")
	}
	c := ast.NewCompiler().WithCapabilities(caps).WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(mods); c.Failed() {
		t.Fatalf("OPA's compiler refuses the shipped policies with hookwall's capabilities: %v", c.Errors)
	}
	// Without the file OPA does not know the builtins: the test can fail.
	c = ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(mods); !c.Failed() {
		t.Fatal("OPA's default capabilities accepted hookwall's builtins")
	}

	unsafe := map[string]*ast.Module{"u.rego": ast.MustParseModuleWithOpts("package u\n\nallow if http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1\"}).status_code == 200\n", ast.ParserOptions{RegoVersion: ast.RegoV1})}
	c = ast.NewCompiler().WithCapabilities(caps).WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(unsafe); !c.Failed() || !strings.Contains(c.Errors.Error(), "http.send") {
		t.Fatalf("http.send is off by default, the capabilities must refuse it: %v", c.Errors)
	}

	// A config that re-enables http.send writes capabilities that allow it.
	cfg := filepath.Join(dir, "gateway.toml")
	if err := os.WriteFile(cfg, []byte("[policies]\ndir = \""+filepath.ToSlash(dir)+"\"\nallow_builtins = [\"http.send\"]\n"+checkConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if code := run(context.Background(), []string{"capabilities", "-c", cfg}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	caps2, err := ast.LoadCapabilitiesJSON(&out)
	if err != nil {
		t.Fatal(err)
	}
	c = ast.NewCompiler().WithCapabilities(caps2).WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(unsafe); c.Failed() {
		t.Fatalf("allow_builtins = [\"http.send\"]: %v", c.Errors)
	}
}

func loadCaps(t *testing.T, path string) *ast.Capabilities {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	caps, err := ast.LoadCapabilitiesJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	return caps
}

// TestCapabilitiesRefusesABrokenImplicitConfig: with no -c, a ./gateway.toml that is there but
// does not load is an error, not "no config" (its allow_builtins would be dropped without a
// word); with none there, the defaults are written.
func TestCapabilitiesRefusesABrokenImplicitConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"capabilities"}, &out, &errb); code != 0 || !strings.Contains(out.String(), `"builtins"`) {
		t.Fatalf("no ./gateway.toml: exit %d %s", code, &errb)
	}
	if err := os.WriteFile(filepath.Join(dir, "gateway.toml"), []byte("[server\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"capabilities"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "gateway.toml:2") {
		t.Fatalf("a broken ./gateway.toml: exit %d, stdout %d bytes, stderr %q; want exit 1 naming the file", code, out.Len(), &errb)
	}
}
