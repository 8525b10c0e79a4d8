package filters

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// goFilters are the examples built from Go with package sdk.
var goFilters = []string{"eventallow", "jsonguard", "redact"}

// goBuildFlags are the flags of the go:generate lines and of
// `hookwall filter build`; GOOS=wasip1 GOARCH=wasm come from the env.
var goBuildFlags = []string{"build", "-trimpath", "-buildmode=c-shared"}

// TestExampleWasmIsCurrent rebuilds every Go example and compares it byte
// for byte with the committed module. Go's wasip1 builds are reproducible
// (-trimpath, same toolchain), so any difference means a stale .wasm: run
// `go generate ./examples/filters/...`. The committed modules are built with
// the toolchain named in go.mod's toolchain line or, without one, the
// version the failure message shows.
func TestExampleWasmIsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("rebuilds three wasm modules; skipped in -short mode")
	}
	for _, name := range goFilters {
		t.Run(name, func(t *testing.T) {
			committed, err := os.ReadFile(filepath.Join(name, name+".wasm"))
			if err != nil {
				t.Fatalf("committed module: %v", err)
			}
			out := filepath.Join(t.TempDir(), name+".wasm")
			cmd := exec.Command("go", append(goBuildFlags, "-o", out, ".")...)
			cmd.Dir = name
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=", "GOWASM=")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go build: %v\n%s", err, b)
			}
			fresh, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(committed, fresh) {
				t.Errorf("%s/%s.wasm is stale (%d bytes committed, %d rebuilt; committed by %s, rebuilt by %s): run go generate ./examples/filters/...",
					name, name, len(committed), len(fresh), goVersionIn(committed), runtime.Version())
			}
		})
	}
}

// TestTinyWasmIsCurrent compiles tiny.wat again when wabt is installed.
func TestTinyWasmIsCurrent(t *testing.T) {
	if _, err := exec.LookPath("wat2wasm"); err != nil {
		t.Skip("wat2wasm (apt package wabt) not installed")
	}
	out := filepath.Join(t.TempDir(), "tiny.wasm")
	if b, err := exec.Command("wat2wasm", "tiny/tiny.wat", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("tiny/tiny.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, fresh) {
		t.Error("tiny/tiny.wasm is stale: run go generate ./examples/filters/")
	}
}

// goVersionIn finds the Go version a module was built with.
func goVersionIn(wasm []byte) string {
	if m := regexp.MustCompile(`go1\.\d+(\.\d+)?`).Find(wasm); m != nil {
		return string(m)
	}
	return "an unknown Go version"
}

// TestGoGenerateLinesMatch keeps each go:generate line and goBuildFlags in
// step, so the check above rebuilds the way the modules were generated.
func TestGoGenerateLinesMatch(t *testing.T) {
	for _, name := range goFilters {
		src, err := os.ReadFile(filepath.Join(name, "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		want := "//go:generate env GOOS=wasip1 GOARCH=wasm go " + strings.Join(goBuildFlags, " ") + " -o " + name + ".wasm ."
		if !bytes.Contains(src, []byte(want+"\n")) {
			t.Errorf("%s/main.go lacks the line\n%s", name, want)
		}
	}
}
