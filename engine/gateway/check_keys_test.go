package gateway

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// TestCheckRefusesWhatStartRefuses: `hookwall check` refuses [delivery] encryption keys a
// start refuses (New opens the keyring before anything listens): one of the wrong size is
// an error naming the file and key, and the error does not quote the key.
func TestCheckRefusesWhatStartRefuses(t *testing.T) {
	for _, c := range []struct{ name, key, want string }{
		{"a 32-byte key, as 64 hex digits", strings.Repeat("4b", 32), ""},
		{"a short key", "short-key-value", `gateway.toml: delivery.encryption_keys: `},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := `
[secrets]
ek = {file = "ek.secret"}
[delivery]
encryption_keys = ["ek"]
[[route]]
name = "a"
path = "/a"
upstream = "http://127.0.0.1:1"
policy = "routes.a"
`
			for name, body := range map[string]string{"gateway.toml": cfg, "ek.secret": c.key, "policies/a.rego": "package routes.a\nallow := true\n"} {
				testutil.WriteFile(t, filepath.Join(dir, name), body)
			}
			path := filepath.Join(dir, "gateway.toml")
			_, err := Check(t.Context(), path, Options{})
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("check: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("check: %v, want an error containing %q", err, c.want)
			case err != nil && strings.Contains(err.Error(), c.key):
				t.Fatalf("the error quotes the key: %v", err)
			}
		})
	}
}
