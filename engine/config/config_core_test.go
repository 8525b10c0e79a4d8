package config

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const minimal = `
[[route]]
name = "gh"
path = "/hooks/github"
upstream = "http://127.0.0.1:9000"
policy = "routes.github"
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse("/etc/hookwall/gateway.toml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Listen != DefaultListen || c.Admin.Listen != DefaultAdminListen || c.Server.MaxBody != DefaultMaxBody ||
		c.Server.MaxHeaders != 100 || c.Server.MaxJSONDepth != 64 || c.Server.MaxJSONElements != 100_000 {
		t.Errorf("defaults: %+v %+v", c.Server, c.Admin)
	}
	if c.State.MaxKeys != DefaultStateMaxKeys || c.State.MaxBytes != DefaultStateMaxBytes {
		t.Errorf("state defaults: %+v", c.State)
	}
	if c.Policies.Dir != "/etc/hookwall/policies" {
		t.Errorf("policy dir resolved against the config file: %q", c.Policies.Dir)
	}
	if c.Routes[0].Timeout.D() != DefaultRouteTimeout || c.Routes[0].UpstreamURL().Host != "127.0.0.1:9000" {
		t.Errorf("route: %+v", c.Routes[0])
	}
	if c.Log.Decisions != "stdout" || c.State.Backend != "memory" || c.State.FailMode != "closed" {
		t.Errorf("log/state defaults: %+v %+v", c.Log, c.State)
	}
}

func TestParseValues(t *testing.T) {
	c, err := Parse("g.toml", []byte(`
[server]
max_body = "64KiB"
read_timeout = "250ms"
trusted_proxies = ["10.0.0.0/8", "192.168.1.1"]
[[filter]]
name = "f"
module = "f.wasm"
timeout = "0"
memory = "2MiB"
[[filter]]
name = "g"
module = "g.wasm"
`+minimal+`filters = ["f", "g"]
methods = ["POST"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MaxBody != 64<<10 || c.Server.ReadTimeout.D() != 250*time.Millisecond || len(c.Server.Trusted()) != 2 {
		t.Errorf("server: %+v", c.Server)
	}
	if !c.Filters[0].NoDeadline || c.Filters[0].Memory != 2<<20 {
		t.Errorf(`timeout = "0" means no deadline: %+v`, c.Filters[0])
	}
	if c.Filters[1].NoDeadline || c.Filters[1].Timeout.D() != DefaultFilterTimeout || c.Filters[1].OnError != "deny" {
		t.Errorf("absent timeout means the default: %+v", c.Filters[1])
	}
}

func TestParseErrorsNameFileLineAndKey(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"unknown key", "[server]\nlisten = \"127.0.0.1:1\"\nlistne = \"x\"\n" + minimal, "g.toml:3: server.listne: unknown key"},
		{"bad duration", "[server]\nread_timeout = \"5 parsecs\"\n" + minimal, "g.toml:2: server.read_timeout: invalid duration"},
		{"bad size", "[server]\nmax_body = \"lots\"\n" + minimal, "g.toml:2: server.max_body: invalid size"},
		{"bad state bytes", "[state]\nmax_bytes = \"lots\"\n" + minimal, "g.toml:2: state.max_bytes: invalid size"},
		{"negative state bytes", "[state]\nmax_bytes = -1\n" + minimal, "g.toml:2: state.max_bytes: invalid size"},
		{"negative state keys", "[state]\nmax_keys = -1\n" + minimal, "g.toml:2: state.max_keys: must be > 0"},
		{"wrong type", "[server]\nmax_conns = \"many\"\n" + minimal, "g.toml:2: server.max_conns: incompatible types"},
		{"unknown underscore mode", "[server]\nunderscore_headers = \"allow\"\n" + minimal, `g.toml:2: server.underscore_headers: must be "reject" or "drop", not "allow"`},
		{"negative max_headers", "[server]\nmax_headers = -1\n" + minimal, "g.toml:2: server.max_headers: must be > 0"},
		{"json depth too deep", "[server]\nmax_json_depth = 20000\n" + minimal, "g.toml:2: server.max_json_depth: must be between 1 and 10000"},
		{"negative json elements", "[server]\nmax_json_elements = -5\n" + minimal, "g.toml:2: server.max_json_elements: must be > 0"},
		{"route without upstream", "[[route]]\nname = \"a\"\npath = \"/a\"\npolicy = \"p\"\n", "route[1].upstream: required"},
		{"second route bad scheme", minimal + "\n[[route]]\nname = \"b\"\npath = \"/b\"\nupstream = \"ftp://x\"\npolicy = \"p\"\n", "g.toml:11: route[2].upstream: scheme must be http or https"},
		{"upstream port out of range", minimal + "\n[[route]]\nname = \"b\"\npath = \"/b\"\nupstream = \"http://u:pw@x:99999/a\"\npolicy = \"p\"\n", "g.toml:11: route[2].upstream: port \"99999\" is not one of 1 to 65535"},
		{"upstream port 0", minimal + "\n[[route]]\nname = \"b\"\npath = \"/b\"\nupstream = \"http://x:0\"\npolicy = \"p\"\n", "g.toml:11: route[2].upstream: port \"0\" is not one of 1 to 65535"},
		{"path and prefix", "[[route]]\nname = \"a\"\npath = \"/a\"\nprefix = \"/b\"\nupstream = \"http://x:1\"\npolicy = \"p\"\n", "g.toml:4: route[1].prefix: set path or prefix, not both"},
		{"unknown filter", minimal + "filters = [\"nope\"]\n", "g.toml:7: route[1].filters: unknown filter \"nope\""},
		{"bad method", minimal + "methods = [\"post\"]\n", "route[1].methods: unknown method \"post\""},
		{"negative max_uses", "[[filter]]\nname = \"f\"\nmodule = \"f.wasm\"\nmax_uses = -1\n\n" + minimal, "g.toml:4: filter[1].max_uses: must be >= 1"},
		{"host with a port", minimal + "host = \"example.com:8443\"\n", "g.toml:7: route[1].host: \"example.com:8443\" is not a host name"},
		{"host with a path", minimal + "host = \"example.com/x\"\n", "route[1].host: \"example.com/x\" is not a host name"},
		{"host with a wildcard", minimal + "host = \"*.example.com\"\n", "route[1].host: \"*.example.com\" is not a host name"},
		{"IPv6 host without brackets", minimal + "host = \"::1\"\n", "route[1].host: \"::1\" is not a host name"},
		{"duplicate route", minimal + minimal, "route[2].name: duplicate route name \"gh\""},
		{"route hidden by an earlier one", minimal + "methods = [\"POST\"]\n\n[[route]]\nname = \"gh2\"\npath = \"/hooks/github\"\nmethods = [\"GET\", \"POST\"]\nupstream = \"http://127.0.0.1:9001\"\npolicy = \"p\"\n",
			"g.toml:11: route[2].path: route \"gh\" already takes POST on this host and path: this route would never get it"},
		{"prefix route hidden by an earlier one", "[[route]]\nname = \"a\"\nprefix = \"/x/\"\nupstream = \"http://x:1\"\npolicy = \"p\"\n\n[[route]]\nname = \"b\"\nprefix = \"/x/\"\nupstream = \"http://x:2\"\npolicy = \"p\"\n",
			"route[2].prefix: route \"a\" already takes every method on this host and prefix"},
		{"secret with neither", "[secrets]\ngh = {}\n" + minimal, "g.toml:2: secrets.gh: set exactly one of env or file"},
		{"secret written as its value", "[secrets]\ngh = \"s3cr3t\"\n" + minimal, "g.toml:2: secrets.gh: a secret is named by where it is read from, {env = \"NAME\"} or {file = \"path\"}, not written in the config"},
		{"listen port out of range", "[server]\nlisten = \"127.0.0.1:99999\"\n" + minimal, `g.toml:2: server.listen: invalid address "127.0.0.1:99999": port "99999" is not a number of 0 to 65535 or a service name`},
		{"admin listen port unknown", "[admin]\nlisten = \"127.0.0.1:no-such-service\"\n" + minimal, `g.toml:2: admin.listen: invalid address "127.0.0.1:no-such-service": port "no-such-service"`},
		{"demo sink port out of range", "[demo]\nsink = \"127.0.0.1:65536\"\n" + minimal, `g.toml:2: demo.sink: invalid address "127.0.0.1:65536": port "65536"`},
		{"admin off loopback without token", "[admin]\nlisten = \"0.0.0.0:9090\"\n" + minimal, "admin.token: required when admin.listen"},
		{"admin tls_cert without tls_key", "[admin]\ntls_cert = \"admin.crt\"\n" + minimal, "admin.tls_key: tls_cert and tls_key go together"},
		{"bad policy path", "[[route]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://x:1\"\npolicy = \"routes/github\"\n", "route[1].policy"},
		{"no routes", "[server]\n", "at least one [[route]]"},
		{"syntax", "a = 1\n[server\n", "g.toml:3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("g.toml", []byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
}

// TestRoutesSplitByMethod: two routes may share a host and path when their methods do not
// overlap (the router tells them apart); other hosts and paths never conflict.
func TestRoutesSplitByMethod(t *testing.T) {
	src := minimal + "methods = [\"POST\"]\n" +
		"\n[[route]]\nname = \"gh-get\"\npath = \"/hooks/github\"\nmethods = [\"GET\", \"HEAD\"]\nupstream = \"http://127.0.0.1:9001\"\npolicy = \"p\"\n" +
		"\n[[route]]\nname = \"gh-other-host\"\nhost = \"b.example\"\npath = \"/hooks/github\"\nupstream = \"http://127.0.0.1:9002\"\npolicy = \"p\"\n"
	if _, err := Parse("g.toml", []byte(src)); err != nil {
		t.Fatal(err)
	}
}

func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "s.txt"), []byte("from-file\n"), 0o600)
	c, err := Parse(filepath.Join(dir, "g.toml"), []byte("[secrets]\na = {env = \"HW_A\"}\nb = {file = \"s.txt\"}\n"+minimal))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HW_A": "from-env"}
	s, err := c.ResolveSecrets(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := s.Get("a"); string(a) != "from-env" {
		t.Errorf("a = %q", a)
	}
	if b, _ := s.Get("b"); string(b) != "from-file" {
		t.Errorf("b = %q (one trailing newline trimmed)", b)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := strings.ReplaceAll(sprintf(f, s), " ", ""); strings.Contains(out, "from-") {
			t.Errorf("%s prints a secret: %s", f, out)
		}
	}
	delete(env, "HW_A")
	_, err = c.ResolveSecrets(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), "secrets.a") || !strings.Contains(err.Error(), "HW_A") {
		t.Fatalf("missing env: %v", err)
	}
	os.Remove(filepath.Join(dir, "s.txt"))
	env["HW_A"] = "x"
	_, err = c.ResolveSecrets(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), "secrets.b") {
		t.Fatalf("missing file: %v", err)
	}
	for _, empty := range []string{"", "\n", "\r\n"} {
		os.WriteFile(filepath.Join(dir, "s.txt"), []byte(empty), 0o600)
		_, err = c.ResolveSecrets(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		if err == nil || !strings.Contains(err.Error(), "secrets.b") || !strings.Contains(err.Error(), "empty") {
			t.Fatalf("a secret file holding %q: %v, want an error naming secrets.b", empty, err)
		}
	}
}

// A URL's user and password never reach an error (which `hookwall check`, the log and the
// status show): url.Parse quotes the whole URL in its errors, so they are reworded, and a
// URL that is quoted has its userinfo masked.
func TestURLErrorsMaskCredentials(t *testing.T) {
	const pw = "s3cr3t-pw"
	route := func(upstream, extra string) string {
		return "[[route]]\nname = \"a\"\npath = \"/a\"\nupstream = \"" + upstream + "\"\npolicy = \"p\"\n" + extra
	}
	cases := []struct{ name, src, want string }{
		{"bad port", route("http://u:"+pw+"@127.0.0.1:port", ""), "route[1].upstream: invalid URL"},
		{"missing host", route("http://u:"+pw+"@", ""), `missing host in "http://xxxxx@"`},
		{"ca on http", route("http://u:"+pw+"@127.0.0.1:1", "upstream_ca = \"ca.pem\"\n"), `not "http://xxxxx@127.0.0.1:1"`},
		{"bundle bad port", "[policies]\nbundle_url = \"https://u:" + pw + "@h:port/b.tar.gz\"\n" + minimal, "policies.bundle_url: invalid URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("g.toml", []byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), pw) {
				t.Fatalf("err = %v, want it to contain %q and not the password", err, c.want)
			}
		})
	}
	for raw, want := range map[string]string{
		"http://127.0.0.1:9000/x":           "http://127.0.0.1:9000/x",
		"http://user@h:1":                   "http://xxxxx@h:1",
		"https://user:" + pw + "@h/p?q=1":   "https://xxxxx@h/p?xxxxx",
		"https:///b.tar.gz?token=" + pw:     "https:///b.tar.gz?xxxxx",
		"https://h/p#" + pw:                 "https://h/p",
		"http://u:" + pw + "@h:port":        "(invalid URL)",
		"redis://:" + pw + "@10.0.0.5:6379": "redis://xxxxx@10.0.0.5:6379",
	} {
		if got := RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

// TestSyntaxErrorsWithholdValues: a value the TOML decoder cannot read is not quoted in its
// error (it reaches the log and /-/status), whatever the mistake: a secret left unquoted,
// a bad escape in a quoted one. The error still names the file, line and key.
func TestSyntaxErrorsWithholdValues(t *testing.T) {
	const secret = "NewAdminT0ken-8c1f"
	for _, c := range []struct{ name, src, want string }{
		{"unquoted", "[admin]\ntoken = " + secret + "\n" + minimal, "g.toml:2: admin.token: expected value but found 9 characters (withheld"},
		{"bad escape", "[admin]\ntoken = \"" + secret + "\\x4\"\n" + minimal, "g.toml:2: admin.token: expected two hexadecimal digits"},
		{"store url", "[state]\nbackend = \"redis\"\nurl = redis://:" + secret + "@10.0.0.5:6379\n" + minimal, "g.toml:3: state.url: expected value but found"},
		{"one character kept", "[server]\nlisten = ?\n" + minimal, `g.toml:2: server.listen: expected value but found '?' instead`},
		{"leading zeroes", "[admin]\ntoken = 0123456789abcdef" + secret + "\n" + minimal, "g.toml:2: admin.token: Invalid integer 10 characters (withheld"},
		{"a float", "[admin]\ntoken = 00123456.7\n" + minimal, "admin.token: Invalid float 10 characters (withheld"},
		{"a float value", "[admin]\ntoken = 1.2.3.4" + secret + "\n" + minimal, "admin.token: Invalid float value: 7 characters (withheld"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("g.toml", []byte(c.src))
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), secret[:5]) {
				t.Fatalf("err = %v\nwant it to contain %q and nothing of the value", err, c.want)
			}
		})
	}
}

// TestReadmeFilterDefaults: the README's configuration table states the filter defaults this
// package (their one source) applies.
func TestReadmeFilterDefaults(t *testing.T) {
	rows := map[string]string{}
	for _, line := range readmeConfigRows(t) {
		if cells := strings.Split(line, " | "); strings.HasPrefix(line, "| `[[filter]] ") && len(cells) >= 3 {
			rows[strings.Trim(strings.TrimPrefix(cells[0], "| "), "`")] = cells[1] + " | " + cells[2]
		}
	}
	for key, want := range map[string]string{
		"[[filter]] timeout":  "`" + DefaultFilterTimeout.String() + "`",
		"[[filter]] memory":   fmt.Sprintf("`%dMiB`", DefaultFilterMemory>>20),
		"[[filter]] max_uses": fmt.Sprintf("`%d`", DefaultFilterMaxUses),
		"[[filter]] pool":     "2 × GOMAXPROCS",
		"[[filter]] pool_max": fmt.Sprintf("max(%d, `pool`)", DefaultFilterPoolMax),
	} {
		if !strings.HasPrefix(rows[key], want+" | ") {
			t.Errorf("README row %s: %q, want the default %s", key, rows[key], want)
		}
	}
	if idle := fmt.Sprintf("after %d s idle", int(DefaultFilterIdleTimeout.Seconds())); !strings.Contains(rows["[[filter]] pool_max"], idle) {
		t.Errorf("README row [[filter]] pool_max does not say %q", idle)
	}
	// At a GOMAXPROCS of our choosing, so that the expected pool is a number, not the
	// function's own formula.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(3))
	if got := DefaultFilterPool(); got != 6 {
		t.Errorf("DefaultFilterPool() = %d at GOMAXPROCS 3, want 6 (2 × GOMAXPROCS)", got)
	}
}

// TestRouteHostsAccepted: a route's host may be a name (any case, with underscores), an
// IPv4 address or a bracketed IPv6 address, as the Host header carries them.
func TestRouteHostsAccepted(t *testing.T) {
	for _, h := range []string{"hooks.example.com", "Hooks.Example.COM", "svc_a.internal", "localhost", "192.0.2.7", "[2001:db8::1]", "[::1]"} {
		src := "[[route]]\nname = \"a\"\npath = \"/a\"\nhost = \"" + h + "\"\nupstream = \"http://127.0.0.1:1\"\npolicy = \"p\"\n"
		if _, err := Parse("g.toml", []byte(src)); err != nil {
			t.Errorf("host %q: %v", h, err)
		}
	}
}
