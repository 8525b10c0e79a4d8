package gateway

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/http-wasm/http-wasm-host-go/tck"
)

// TestHTTPWasmTCK runs the http-wasm compatibility kit (from the module cache, not copied
// here) through the real gateway: its guest as a [[filter]] on a catch-all route, the kit's
// backend as the upstream.
func TestHTTPWasmTCK(t *testing.T) {
	backend := tck.StartBackend("127.0.0.1:0")
	t.Cleanup(backend.Close)
	dir := t.TempDir()
	guest := filepath.Join(dir, "tck.wasm")
	if err := os.WriteFile(guest, tck.GuestWASM, 0o644); err != nil {
		t.Fatal(err)
	}
	e := startEnv(t, strings.NewReplacer("{{UPSTREAM}}", backend.URL, "{{GUEST}}", guest).Replace(`
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
decisions = "off"
[[filter]]
name = "tck"
module = "{{GUEST}}"
[[route]]
name = "tck"
prefix = "/"
upstream = "{{UPSTREAM}}"
policy = "routes.tck"
filters = ["tck"]
`), map[string]string{"policies/tck.rego": "package routes.tck\nallow := true\n"}, Options{})
	t.Run("kit", func(t *testing.T) { tck.Run(t, &http.Client{}, e.base) })
}
