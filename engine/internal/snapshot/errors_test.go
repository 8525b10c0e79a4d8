package snapshot

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// TestBuildErrorsNameFileAndLine: what only a build finds (a builtin allow_builtins cannot
// turn on, a policies dir that is not there, a route's package that no file defines) is
// refused with the config file's line of the key or table, as validation errors are.
func TestBuildErrorsNameFileAndLine(t *testing.T) {
	const head = `[server]
listen = "127.0.0.1:0"
[policies]
dir = "policies"
`
	const routes = `
[[route]]
name = "a"
path = "/a"
upstream = "http://127.0.0.1:1"
policy = "routes.a"

[[route]]
name = "b"
path = "/b"
upstream = "http://127.0.0.1:1"
policy = "routes.nope"
`
	ctx := context.Background()
	host := newHost(t)
	for _, c := range []struct{ name, cfg, want string }{
		{"allow_builtins", strings.Replace(head, "[policies]\n", "[policies]\nallow_builtins = [\"rand.intn\"]\n", 1) + routes[:strings.Index(routes, "\n[[route]]\nname = \"b\"")],
			`g.toml:4: policies.allow_builtins: "rand.intn" is not one of the builtins that are off by default`},
		{"dir", strings.Replace(head, `dir = "policies"`, `dir = "nope"`, 1) + routes[:strings.Index(routes, "\n[[route]]\nname = \"b\"")],
			"g.toml:4: policies.dir: stat "},
		{"route package", head + routes, `g.toml:12: route[2] "b": `},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			testutil.WriteFile(t, filepath.Join(dir, "policies", "a.rego"), "package routes.a\n\nallow := true\n")
			cfg, err := config.Parse(filepath.Join(dir, "g.toml"), []byte(c.cfg))
			if err != nil {
				t.Fatal(err)
			}
			s, err := Build(ctx, cfg, Options{Host: host})
			if err == nil {
				s.Release()
				t.Fatal("built")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
}
