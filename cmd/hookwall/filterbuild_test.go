package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

func TestFilterBuildEventAllow(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Go toolchain")
	}
	ctx := context.Background()
	src := filepath.Join("..", "..", "examples", "filters", "eventallow")
	out := filepath.Join(t.TempDir(), "ea.wasm")
	var stdout, stderr bytes.Buffer
	// The flag after DIR, as the usage line shows it.
	if code := cmdFilterBuild(ctx, []string{src, "-o", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, &stdout, &stderr)
	}
	if !regexp.MustCompile(`^built .*ea\.wasm: \d+\.\d MiB in \d.*\(exports .*handle_request.*\)\n$`).Match(stdout.Bytes()) {
		t.Errorf("report = %q; want size, time and exports", stdout.String())
	}
	mod, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}

	// An independent check of the output: wazero compiles it, and it has
	// the http-wasm guest exports with their ABI signatures.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	cm, err := rt.CompileModule(ctx, mod)
	if err != nil {
		t.Fatalf("output is not a valid module: %v", err)
	}
	fns := cm.ExportedFunctions()
	req, ok := fns["handle_request"]
	if !ok || len(req.ParamTypes()) != 0 || !bytes.Equal(req.ResultTypes(), []api.ValueType{api.ValueTypeI64}) {
		t.Errorf("handle_request missing or not () -> i64: %v", ok)
	}
	resp, ok := fns["handle_response"]
	if !ok || !bytes.Equal(resp.ParamTypes(), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32}) || len(resp.ResultTypes()) != 0 {
		t.Errorf("handle_response missing or not (i32, i32) -> ()")
	}
	if _, ok := fns["_initialize"]; !ok {
		t.Error("not a reactor: no _initialize export")
	}
	if _, ok := cm.ExportedMemories()["memory"]; !ok {
		t.Error("no memory export")
	}

	// Same flags as go:generate: the committed module is what it builds.
	committed, err := os.ReadFile(filepath.Join(src, "eventallow.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mod, committed) {
		t.Error("filter build output differs from the committed eventallow.wasm (stale module, or different flags)")
	}
}

// failingFilterDirs writes two filter directories that filter build refuses: notSDK builds a
// module that exports no handler, broken does not compile.
func failingFilterDirs(t *testing.T) (notSDK, broken string) {
	t.Helper()
	notSDK = t.TempDir()
	write(t, filepath.Join(notSDK, "go.mod"), "module example.com/plain\n\ngo 1.24\n")
	write(t, filepath.Join(notSDK, "main.go"), "package main\n\nfunc main() {}\n")
	broken = t.TempDir()
	write(t, filepath.Join(broken, "go.mod"), "module example.com/broken\n\ngo 1.24\n")
	write(t, filepath.Join(broken, "main.go"), "package main\n\nfunc main() { undefined() }\n")
	return notSDK, broken
}

func TestFilterBuildErrors(t *testing.T) {
	ctx := context.Background()
	notSDK, broken := failingFilterDirs(t)
	file := filepath.Join(notSDK, "main.go")

	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no dir", nil, 2, "usage:"},
		{"two dirs", []string{notSDK, broken}, 2, "usage:"},
		{"not a dir", []string{file}, 2, "is not a directory"},
		{"unknown flag", []string{"-x", notSDK}, 2, "flag provided but not defined"},
		{"compile error", []string{broken, "-o", filepath.Join(t.TempDir(), "b.wasm")}, 1, "undefined"},
		{"no handler exported", []string{"-o", filepath.Join(t.TempDir(), "p.wasm"), notSDK}, 1, "does not export handle_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if testing.Short() && c.code == 1 {
				t.Skip("runs the Go toolchain")
			}
			var stdout, stderr bytes.Buffer
			code := cmdFilterBuild(ctx, c.args, &stdout, &stderr)
			if code != c.code || !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d with %q", code, stderr.String(), c.code, c.stderr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout on failure: %q", stdout.String())
			}
		})
	}
}

// TestFilterBuildFailureKeepsOutput: a build that fails, in the compiler or in
// the check of its exports, leaves the module already at -o byte for byte,
// and no temporary file beside it.
func TestFilterBuildFailureKeepsOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Go toolchain")
	}
	ctx := context.Background()
	outDir := t.TempDir()
	out := filepath.Join(outDir, "f.wasm")
	var stdout, stderr bytes.Buffer
	if code := cmdFilterBuild(ctx, []string{filepath.Join("..", "..", "examples", "filters", "eventallow"), "-o", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("good build: exit %d\n%s", code, &stderr)
	}
	good, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	notSDK, broken := failingFilterDirs(t)
	for _, c := range []struct{ name, dir, stderr string }{
		{"no handler exported", notSDK, "does not export handle_request"},
		{"compile error", broken, "undefined"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stdout.Reset()
			stderr.Reset()
			if code := cmdFilterBuild(ctx, []string{c.dir, "-o", out}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), c.stderr) {
				t.Fatalf("exit %d, stderr %q; want 1 with %q", code, &stderr, c.stderr)
			}
			after, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(after, good) {
				t.Errorf("the failed build replaced %s (%d bytes, was %d)", out, len(after), len(good))
			}
			if ents, _ := os.ReadDir(outDir); len(ents) != 1 {
				t.Errorf("left beside the output: %v", ents)
			}
		})
	}
}

// TestFilterBuildErrorPaths: the compiler's error names the file relative to
// the directory hookwall runs in, not to the filter's, where go ran.
func TestFilterBuildErrorPaths(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Go toolchain")
	}
	parent := t.TempDir()
	broken := filepath.Join(parent, "bf")
	if err := os.Mkdir(broken, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(broken, "go.mod"), "module example.com/broken\n\ngo 1.24\n")
	write(t, filepath.Join(broken, "main.go"), "package main\n\nfunc main() { undefined() }\n")
	t.Chdir(parent)
	var stdout, stderr bytes.Buffer
	code := cmdFilterBuild(context.Background(), []string{"bf", "-o", filepath.Join(t.TempDir(), "b.wasm")}, &stdout, &stderr)
	if code != 1 {
		t.Fatalf("exit %d; stderr %s", code, &stderr)
	}
	want := filepath.Join("bf", "main.go") + ":3:"
	if !strings.Contains(stderr.String(), "\n"+want) && !strings.HasPrefix(stderr.String(), want) || strings.Contains(stderr.String(), "./main.go") {
		t.Errorf("stderr %q; want the error at %s", &stderr, want)
	}
}

func TestRelocatePaths(t *testing.T) {
	in := "# example.com/x\n./main.go:3:15: undefined: undefined\n../lib/l.go:1:1: bad\n\t./a.go:2: note\nnote: module requires Go 1.99\n"
	got := string(relocatePaths([]byte(in), "/w/filters/x", "/w"))
	want := "# example.com/x\nfilters/x/main.go:3:15: undefined: undefined\nfilters/lib/l.go:1:1: bad\n\tfilters/x/a.go:2: note\nnote: module requires Go 1.99\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Far away, the absolute path is the shorter.
	if got := string(relocatePaths([]byte("./main.go:1:1: e\n"), "/f", "/u/a/b/c/d")); got != "/f/main.go:1:1: e\n" {
		t.Errorf("far: got %q", got)
	}
}

// TestFilterBuildOutputDir: -o naming a directory writes <dir>/<name of DIR>.wasm.
func TestFilterBuildOutputDir(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Go toolchain")
	}
	t.Run("existing", func(t *testing.T) { filterBuildIntoDir(t, t.TempDir(), "") })
	// A directory that does not exist yet, named with a trailing separator, is made, as go
	// build -o makes it; it was a file named after its last element.
	t.Run("new", func(t *testing.T) {
		filterBuildIntoDir(t, filepath.Join(t.TempDir(), "sub", "dir"), string(filepath.Separator))
	})
}

// filterBuildIntoDir builds eventallow with -o outDir+suffix and wants outDir/eventallow.wasm.
func filterBuildIntoDir(t *testing.T, outDir, suffix string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	src := filepath.Join("..", "..", "examples", "filters", "eventallow")
	if code := cmdFilterBuild(context.Background(), []string{src, "-o", outDir + suffix}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s", code, &stderr)
	}
	ents, err := os.ReadDir(outDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "eventallow.wasm" {
		t.Fatalf("%s holds %v, want eventallow.wasm", outDir, ents)
	}
	mod, err := os.ReadFile(filepath.Join(outDir, "eventallow.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if exports, err := filterBuildExports(mod); err != nil || !slices.Contains(exports, "handle_request") {
		t.Errorf("exports %v, %v", exports, err)
	}
	if !strings.Contains(stdout.String(), filepath.Join(outDir, "eventallow.wasm")) {
		t.Errorf("report %q does not name the file written", &stdout)
	}
}

func TestFilterBuildExports(t *testing.T) {
	// (module (memory (export "memory") 1) (func (export "f")))
	mod := []byte("\x00asm\x01\x00\x00\x00" +
		"\x01\x04\x01\x60\x00\x00" + // type: () -> ()
		"\x03\x02\x01\x00" + // func 0: type 0
		"\x05\x03\x01\x00\x01" + // memory: min 1
		"\x07\x0e\x02\x06memory\x02\x00\x01f\x00\x00" + // exports
		"\x0a\x04\x01\x02\x00\x0b") // code
	got, err := filterBuildExports(mod)
	if err != nil || strings.Join(got, ",") != "memory,f" {
		t.Errorf("exports = %q, %v; want memory,f", got, err)
	}
	for _, bad := range [][]byte{nil, []byte("\x00asm"), []byte("\x00asm\x02\x00\x00\x00"), mod[:len(mod)-8], []byte("\x00asm\x01\x00\x00\x00\x07\xff")} {
		if _, err := filterBuildExports(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ownModuleFilter is a filter as an author writes it in a module of its own:
// it refuses a request without X-Tenant and reports the tenant to the policy.
const ownModuleFilter = `package main

import "github.com/hookwall/hookwall/sdk"

func init() {
	sdk.Handle(func(req sdk.Request, resp sdk.Response) bool {
		tenant := req.Header("X-Tenant")
		if tenant == "" {
			return sdk.Deny(451, "no tenant")
		}
		sdk.SetLabel("tenant", tenant)
		return true
	})
}

func main() {}
`

const ownModuleConfig = `
[[filter]]
name = "own"
module = "own.wasm"

[[route]]
name = "hook"
path = "/hooks/hook"
upstream = "http://127.0.0.1:1"
policy = "routes.hook"
filters = ["own"]
`

const ownModulePolicy = `package routes.hook

default allow := false

allow if input.filters.own.labels.tenant == "acme"
`

// TestFilterBuildOwnModule builds a filter that lives outside the repository,
// in its own module requiring the SDK through a replace to this checkout, and
// runs the module it gets in the gateway's filter host (hookwall eval).
func TestFilterBuildOwnModule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Go toolchain")
	}
	sdkDir := offlineSDK(t)
	dir := writeTree(t, map[string]string{
		"filter/go.mod":      "module example.com/own\n\ngo 1.24\n\nrequire " + sdkModule + " v0.0.0\n\nreplace " + sdkModule + " => " + sdkDir + "\n",
		"filter/main.go":     ownModuleFilter,
		"gateway.toml":       ownModuleConfig,
		"policies/hook.rego": ownModulePolicy,
		"acme.http":          "POST /hooks/hook HTTP/1.1\nHost: h\nX-Tenant: acme\nContent-Length: 2\n\n{}",
		"anonymous.http":     "POST /hooks/hook HTTP/1.1\nHost: h\nContent-Length: 2\n\n{}",
	})
	var stdout, stderr bytes.Buffer
	if code := cmdFilterBuild(context.Background(), []string{filepath.Join(dir, "filter"), "-o", filepath.Join(dir, "own.wasm")}, &stdout, &stderr); code != 0 {
		t.Fatalf("filter build: exit %d\n%s", code, &stderr)
	}

	cfg := filepath.Join(dir, "gateway.toml")
	code, r, errs := evalCLI(t, "-c", cfg, "--request", filepath.Join(dir, "acme.http"))
	if code != 0 || r.Outcome != "allowed" || len(r.Filters) != 1 || r.Filters[0]["outcome"] != "next" {
		t.Fatalf("acme: exit %d %+v %s", code, r, errs)
	}
	if labels, _ := r.Filters[0]["labels"].(map[string]any); labels["tenant"] != "acme" {
		t.Fatalf("the filter's label did not reach the policy: %v", r.Filters)
	}
	code, r, errs = evalCLI(t, "-c", cfg, "--request", filepath.Join(dir, "anonymous.http"))
	if code != 0 || r.Outcome != "filtered" || r.Status != 451 || r.Evaluated {
		t.Fatalf("anonymous: exit %d %+v %s", code, r, errs)
	}
}

// TestFilterBuildSDKUnresolved: a filter module that cannot resolve the SDK
// is told the require and replace lines to add, with this checkout's sdk
// directory, and never the go command's `go get`, which cannot fetch it.
func TestFilterBuildSDKUnresolved(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the Go toolchain")
	}
	sdkDir := offlineSDK(t)
	root := writeTree(t, map[string]string{
		"norequire/go.mod":  "module example.com/norequire\n\ngo 1.24\n",
		"norequire/main.go": ownModuleFilter,
		"noreplace/go.mod":  "module example.com/noreplace\n\ngo 1.24\n\nrequire " + sdkModule + " v0.0.0\n",
		"noreplace/main.go": ownModuleFilter,
		"nomodule/main.go":  ownModuleFilter,
	})
	want := "\trequire " + sdkModule + " v0.0.0\n\treplace " + sdkModule + " => " + sdkDir + "\n"
	for _, name := range []string{"norequire", "noreplace", "nomodule"} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			dir := filepath.Join(root, name)
			if code := cmdFilterBuild(context.Background(), []string{dir, "-o", filepath.Join(t.TempDir(), "f.wasm")}, &stdout, &stderr); code != 1 {
				t.Fatalf("exit %d; want 1\n%s", code, &stderr)
			}
			got := stderr.String()
			if !strings.Contains(got, want) || strings.Contains(got, "\tgo get") || strings.Contains(got, "to add it") {
				t.Errorf("stderr lacks the go.mod lines %q, or suggests go get:\n%s", want, got)
			}
			gomod := filepath.Join(dir, "go.mod")
			if name == "nomodule" && !strings.Contains(got, "create "+gomod) {
				t.Errorf("stderr does not say to create %s:\n%s", gomod, got)
			}
			if name != "nomodule" && !strings.Contains(got, "add these lines to "+gomod) {
				t.Errorf("stderr does not name %s:\n%s", gomod, got)
			}
		})
	}
}

// offlineSDK keeps the go command off module proxies for the test (the SDK is
// a filter module's only requirement) and returns this checkout's sdk directory.
func offlineSDK(t *testing.T) string {
	t.Helper()
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOFLAGS", "")
	t.Setenv("GOWORK", "off")
	dir, err := filepath.Abs(filepath.Join("..", "..", "sdk"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}
