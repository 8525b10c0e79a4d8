package config

import (
	"strings"
	"testing"
)

func TestObservabilityKeys(t *testing.T) {
	c, err := Parse("/etc/hookwall/gateway.toml", []byte(`
[log]
decisions = "/var/log/hookwall/decisions.log"
mask = ["X-Tenant", "x-internal-*", "*"]
body = "4KiB"

[[route]]
name = "gh"
path = "/hooks/github"
upstream = "http://127.0.0.1:9000"
policy = "routes.github"
shadow_policy = "data.routes.github_v2"
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Log.Mask) != 3 || c.Log.Mask[1] != "x-internal-*" || c.Log.Body != 4096 {
		t.Errorf("log: %+v", c.Log)
	}
	if r := c.Routes[0]; r.ShadowPolicy != "data.routes.github_v2" || r.ShadowPackage() != "routes.github_v2" {
		t.Errorf("shadow: %q %q", r.ShadowPolicy, r.ShadowPackage())
	}
	// Defaults: nothing extra masked, no body, no shadow.
	c, err = Parse("/etc/hookwall/gateway.toml", []byte(policiesRoute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Log.Mask != nil || c.Log.Body != 0 || c.Routes[0].ShadowPolicy != "" || c.Routes[0].ShadowPackage() != "" {
		t.Errorf("defaults: %+v %+v", c.Log, c.Routes[0])
	}
}

func TestObservabilityKeysInvalid(t *testing.T) {
	cases := []struct{ name, toml, want string }{
		{"mask with a space", "[log]\nmask = [\"X Tenant\"]\n" + policiesRoute, `gateway.toml:2: log.mask: "X Tenant" is not a header name`},
		{"mask empty", "[log]\nmask = [\"\"]\n" + policiesRoute, `log.mask: "" is not a header name`},
		{"star in the middle", "[log]\nmask = [\"X-*-Id\"]\n" + policiesRoute, `log.mask: "X-*-Id"`},
		{"body not a size", "[log]\nbody = \"lots\"\n" + policiesRoute, `invalid size "lots"`},
		{"shadow not a package", policiesRoute + "shadow_policy = \"routes/github\"\n", `shadow_policy: "routes/github" is not a Rego package path`},
		{"shadow is the live policy", policiesRoute + "shadow_policy = \"data.routes.github\"\n", `shadow_policy: is the live policy "routes.github"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("/etc/hookwall/gateway.toml", []byte(tc.toml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
