package filter

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// wat compiles src with wat2wasm (wabt).
func wat(t *testing.T, src string) []byte {
	t.Helper()
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not installed (apt install wabt)")
	}
	in := filepath.Join(t.TempDir(), "m.wat")
	if err := os.WriteFile(in, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	out := strings.TrimSuffix(in, ".wat") + ".wasm"
	if b, err := exec.Command(wat2wasm, "--debug-names", in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEmptyExport(t *testing.T) {
	const head = `(module
  (import "http_handler" "log" (func $log (param i32 i32 i32)))
  (import "hookwall" "g" (global i32))
  (import "hookwall" "t" (table 1 funcref))
  (memory (export "memory") 1)
  (func (export "handle_request") (result i64) (i64.const 1))
`
	for _, tc := range []struct {
		name, body string
		want       bool
	}{
		{"empty", `(func (export "handle_response") (param i32 i32))`, true},
		{"empty with locals", `(func (export "handle_response") (param i32 i32) (local i64 f32))`, true},
		{"nop", `(func (export "handle_response") (param i32 i32) nop)`, false},
		{"host call", `(func (export "handle_response") (param i32 i32) (call $log (i32.const 0) (i32.const 0) (i32.const 0)))`, false},
		{"unreachable", `(func (export "handle_response") (param i32 i32) unreachable)`, false},
		// The empty function is another one: the index must be mapped past the imports.
		{"empty neighbour", `(func $e (param i32 i32)) (func (export "handle_response") (param i32 i32) (drop (i32.const 1)))`, false},
		{"empty after a full one", `(func (param i32 i32) (drop (i32.const 1))) (func (export "handle_response") (param i32 i32))`, true},
		{"re-exported import", `(export "handle_response" (func $log))`, false},
		{"absent", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mod := wat(t, head+tc.body+")")
			if got := emptyExport(mod, exportHandleResponse); got != tc.want {
				t.Fatalf("emptyExport = %v, want %v", got, tc.want)
			}
			for n := range len(mod) { // a truncated module is never called empty by mistake
				if tc.want != true && emptyExport(mod[:n], exportHandleResponse) {
					t.Fatalf("truncated to %d bytes: reported empty", n)
				}
			}
		})
	}
}

// A guest whose handle_response does nothing is called once a request, not twice; one that
// does something still gets its response phase.
func TestEmptyResponsePhaseNotCalled(t *testing.T) {
	up := startUpstream(t)
	h := newHost(t)
	for _, tc := range []struct {
		module        string
		config        []byte
		response      bool
		callsPerRound uint64
	}{
		{"tiny.wasm", nil, false, 1},
		{"respbody.wasm", []byte{1}, true, 2}, // config 1: it buffers the response it rewrites
	} {
		f := load(t, h, Spec{Name: strings.TrimSuffix(tc.module, ".wasm"), Module: testdata(t, tc.module), Config: tc.config, Pool: 1})
		if f.HasResponsePhase() != tc.response {
			t.Fatalf("%s: HasResponsePhase = %v, want %v", tc.module, f.HasResponsePhase(), tc.response)
		}
		g := startGateway(t, f, up.addr)
		before := f.Stats().Calls
		for range 3 {
			if resp, _ := get(t, g.url, nil, "GET", ""); resp.StatusCode != 200 {
				t.Fatalf("%s: status %d", tc.module, resp.StatusCode)
			}
		}
		if got := f.Stats().Calls - before; got != 3*tc.callsPerRound {
			t.Fatalf("%s: %d guest calls for 3 requests, want %d", tc.module, got, 3*tc.callsPerRound)
		}
	}
}
