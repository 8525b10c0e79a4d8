package policy

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/hookwall/hookwall/engine/internal/vectors"
)

type secretMap map[string][]byte

func (m secretMap) Get(n string) ([]byte, bool) { v, ok := m[n]; return v, ok }

// requestValue builds input.request the way engine/internal/input does: lower-case header names.
func requestValue(method, path string, headers map[string]string, body string) ast.Object {
	h := ast.NewObject()
	for k, v := range headers {
		h.Insert(ast.StringTerm(strings.ToLower(k)), ast.StringTerm(v))
	}
	return ast.NewObject(
		ast.Item(ast.StringTerm("method"), ast.StringTerm(method)),
		ast.Item(ast.StringTerm("path"), ast.StringTerm(path)),
		ast.Item(ast.StringTerm("headers"), ast.NewTerm(h)),
		ast.Item(ast.StringTerm("body"), ast.StringTerm(body)),
	)
}

func doc(req ast.Object) ast.Value {
	return ast.NewObject(ast.Item(ast.StringTerm("request"), ast.NewTerm(req)))
}

const verifyPolicy = `package routes.gh
v := hookwall.webhook.verify("github", input.request, {"secret": "gh"})
allow if v.valid
deny contains v.reason if not v.valid
`

// TestGitHubVectorsThroughBuiltin runs the published GitHub vectors through the Rego builtin.
func TestGitHubVectorsThroughBuiltin(t *testing.T) {
	n := 0
	for _, v := range vectors.Load(t) {
		if v.Provider != "github" {
			continue
		}
		n++
		t.Run(v.Name, func(t *testing.T) {
			now := time.Unix(v.Now, 0)
			set, err := LoadModules(context.Background(), map[string]string{"gh.rego": verifyPolicy}, nil,
				Options{Secrets: secretMap{"gh": []byte(v.Key())}, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			q, err := set.Prepare(context.Background(), "routes.gh")
			if err != nil {
				t.Fatal(err)
			}
			d, err := q.Eval(context.Background(), doc(requestValue("POST", "/", v.Headers, v.Body)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Allow && !d.Denied(); got != (v.Expect == "valid") {
				t.Fatalf("allow=%v deny=%v, want expect=%s", d.Allow, d.Deny, v.Expect)
			}
		})
	}
	if n < 4 {
		t.Fatalf("only %d GitHub vectors found", n)
	}
}

func TestVerifyRotationAndErrors(t *testing.T) {
	body := `{"x":1}`
	sig := "sha256=" + hmacHex("new", body)
	cases := []struct {
		name, policy string
		wantAllow    bool
		wantErr      string
	}{
		{"rotation list", `package p
allow if hookwall.webhook.verify("github", input.request, {"secret": ["old", "new"]}).valid`, true, ""},
		{"only old secret", `package p
allow if hookwall.webhook.verify("github", input.request, {"secret": "old"}).valid`, false, ""},
		// Names computed at evaluation time: what a constant would name is refused at load
		// (TestCheckCallsAtLoad); these are checked when the call runs.
		{"unknown secret name is an error, never a silent deny", `package p
allow if hookwall.webhook.verify("github", input.request, {"secret": concat("", ["no", "pe"])}).valid`, false, `no secret named "nope"`},
		{"unknown scheme", `package p
allow if hookwall.webhook.verify(concat("", ["carrier", "-pigeon"]), input.request, {"secret": "new"}).valid`, false, "carrier-pigeon"},
		{"unknown option", `package p
allow if hookwall.webhook.verify("github", input.request, {"secret": "new", concat("", ["toler", "ence"]): "5m"}).valid`, false, `unknown opts key "tolerence" (did you mean "tolerance"?)`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, err := LoadModules(context.Background(), map[string]string{"p.rego": c.policy}, nil,
				Options{Secrets: secretMap{"old": []byte("old"), "new": []byte("new")}})
			if err != nil {
				t.Fatal(err)
			}
			q, err := set.Prepare(context.Background(), "p")
			if err != nil {
				t.Fatal(err)
			}
			d, err := q.Eval(context.Background(), doc(requestValue("POST", "/", map[string]string{"X-Hub-Signature-256": sig}, body)), nil)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, c.wantErr)
				}
				if strings.Contains(err.Error(), "old") && c.wantErr != "" && strings.Contains(err.Error(), string("new\x00")) {
					t.Fatal("secret value in error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != c.wantAllow {
				t.Fatalf("allow = %v, want %v", d.Allow, c.wantAllow)
			}
		})
	}
}

func TestUnsafeBuiltinsAreOff(t *testing.T) {
	for _, b := range []string{`http.send({"method": "GET", "url": "http://127.0.0.1:1"})`, `net.lookup_ip_addr("example.com")`, `opa.runtime()`} {
		src := "package p\nallow if {\n\tx := " + b + "\n\tx\n}\n"
		_, err := LoadModules(context.Background(), map[string]string{"p.rego": src}, nil, Options{})
		if err == nil || !strings.Contains(err.Error(), "p.rego:3") {
			t.Errorf("%s: err = %v, want a compile error at p.rego:3", b, err)
		} else if name, _, _ := strings.Cut(b, "("); !strings.Contains(err.Error(), "allow_builtins = [\""+name+"\"] turns it on") {
			t.Errorf("%s: err = %v, want it to say how to turn the builtin on", b, err)
		}
	}
	name := "http.send"
	src := "package p\nallow if {\n\tx := http.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1\"})\n\tx\n}\n"
	if _, err := LoadModules(context.Background(), map[string]string{"p.rego": src}, nil, Options{AllowBuiltins: []string{name}}); err != nil {
		t.Errorf("allow_builtins = [%q] must compile: %v", name, err)
	}
	if _, err := LoadModules(context.Background(), map[string]string{"p.rego": "package p\nallow := true\n"}, nil, Options{AllowBuiltins: []string{"time.now_ns"}}); err == nil {
		t.Error("allow_builtins naming a builtin that is not off must be an error")
	}
}

func TestCompileErrorsNameFileAndLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(dir+"/routes", 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(dir+"/routes/ok.rego", []byte("package routes.ok\nallow := true\n"), 0o644)
	os.WriteFile(dir+"/routes/bad.rego", []byte("package routes.bad\n\nallow if {\n\tinput.x ==\n}\n"), 0o644)
	_, err := Load(context.Background(), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "bad.rego:5") {
		t.Fatalf("syntax error: %v, want bad.rego:5", err)
	}
	os.WriteFile(dir+"/routes/bad.rego", []byte("package routes.bad\n\nallow if {\n\tcount(1) > 0\n}\n"), 0o644)
	_, err = Load(context.Background(), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "bad.rego:4") {
		t.Fatalf("type error: %v, want bad.rego:4", err)
	}
	// Tests are not served: a failing _test.rego file does not break loading.
	os.WriteFile(dir+"/routes/bad.rego", []byte("package routes.bad\nallow := false\n"), 0o644)
	os.WriteFile(dir+"/routes/bad_test.rego", []byte("package routes.bad_test\ntest_x if { data.routes.bad.allow }\n"), 0o644)
	set, err := Load(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range set.Files() {
		if strings.HasSuffix(f, "_test.rego") {
			t.Fatalf("test file served: %s", f)
		}
	}
	if _, err := set.Prepare(context.Background(), "routes.missing"); err == nil || !strings.Contains(err.Error(), "routes.missing") {
		t.Fatalf("missing package: %v", err)
	}
}

func TestDecisionShapes(t *testing.T) {
	cases := []struct {
		name, rules string
		check       func(t *testing.T, d Decision, err error)
	}{
		{"undefined allow denies", "x := 1", func(t *testing.T, d Decision, err error) {
			if err != nil || d.Allow || !d.Denied() || d.Status != 403 {
				t.Fatalf("%+v %v", d, err)
			}
		}},
		{"deny wins over allow", "allow := true\ndeny contains \"no\"\nstatus := 451", func(t *testing.T, d Decision, err error) {
			if err != nil || !d.Denied() || d.Status != 451 || len(d.Deny) != 1 || d.Deny[0] != "no" {
				t.Fatalf("%+v %v", d, err)
			}
		}},
		{"obligations", `allow := true
rate_limit := {"key": "k", "limit": 10, "per": "1m", "burst": 2}
dedupe := {"key": "d", "ttl": "24h"}
upstream_headers := {"X-A": "1"}
labels := {"l": "v"}`, func(t *testing.T, d Decision, err error) {
			if err != nil || d.RateLimit == nil || d.RateLimit.Limit != 10 || d.RateLimit.Per != time.Minute || d.RateLimit.Burst != 2 ||
				d.Dedupe == nil || d.Dedupe.TTL != 24*time.Hour || len(d.UpstreamHeaders) != 1 || d.Labels["l"] != "v" {
				t.Fatalf("%+v %v", d, err)
			}
		}},
		{"bad status is an error", "allow := true\nstatus := 200", func(t *testing.T, d Decision, err error) {
			if err == nil || !strings.Contains(err.Error(), "status") {
				t.Fatalf("err = %v", err)
			}
		}},
		{"bad rate_limit is an error", "allow := true\nrate_limit := {\"key\": \"k\", \"limit\": 0, \"per\": \"1m\"}", func(t *testing.T, d Decision, err error) {
			if err == nil || !strings.Contains(err.Error(), "rate_limit.limit") {
				t.Fatalf("err = %v", err)
			}
		}},
		{"non-boolean allow is an error", "allow := \"yes\"", func(t *testing.T, d Decision, err error) {
			if err == nil {
				t.Fatal("want error")
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := "package p\n" + c.rules + "\n"
			set, err := LoadModules(context.Background(), map[string]string{"p.rego": src}, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			q, err := set.Prepare(context.Background(), "p")
			if err != nil {
				if c.name == "undefined allow denies" && strings.Contains(err.Error(), "no allow rule") {
					return // refused at load: even stronger than a runtime deny
				}
				t.Fatal(err)
			}
			d, err := q.Eval(context.Background(), doc(requestValue("POST", "/", nil, "")), nil)
			c.check(t, d, err)
		})
	}
}

func TestNeedsJSON(t *testing.T) {
	cases := map[string]bool{
		"package p\nallow if input.request.json.a == 1":                                                     true,
		"package p\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"s\"}).valid": false,
		"package p\nallow if input.request.headers.x == \"1\"":                                              false,
		"package p\nallow if { r := input.request; r.json.a == 1 }":                                         true,
		// A variable key may name "request", and the JSON below it.
		"package p\nsection := \"request\"\nallow if input[section].json.a == 1": true,
		"package p\nallow if input[_].json.a == 1":                               true,
		"package p\nallow if { k := \"json\"; input.request[k].a == 1 }":         true,
	}
	for src, want := range cases {
		set, err := LoadModules(context.Background(), map[string]string{"p.rego": src}, nil, Options{Secrets: secretMap{"s": []byte("x")}})
		if err != nil {
			t.Fatal(err)
		}
		q, err := set.Prepare(context.Background(), "p")
		if err != nil {
			t.Fatal(err)
		}
		if q.NeedsJSON() != want {
			t.Errorf("NeedsJSON(%q) = %v, want %v", src, q.NeedsJSON(), want)
		}
	}
}

func TestNeedsJSONIsPerRoute(t *testing.T) {
	set, err := LoadModules(context.Background(), map[string]string{
		"a.rego":   "package routes.a\nallow if input.request.headers.x == \"1\"\n",
		"b.rego":   "package routes.b\nimport data.lib.body\nallow if body.ok\n",
		"lib.rego": "package lib.body\nok if input.request.json.ok == true\n",
		"c.rego":   "package routes.c\nallow if data.lib.body.ok\n",
		"v.rego":   "package examples.validation\nallow if input.request.json.x\n",
	}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for pkg, want := range map[string]bool{"routes.a": false, "routes.b": true, "routes.c": true, "examples.validation": true} {
		q, err := set.Prepare(context.Background(), pkg)
		if err != nil {
			t.Fatal(err)
		}
		if q.NeedsJSON() != want {
			t.Errorf("%s: NeedsJSON = %v, want %v (another package reading JSON must not turn parsing on)", pkg, q.NeedsJSON(), want)
		}
	}
}

func TestEvalHonoursDeadline(t *testing.T) {
	// A policy that would run for a long time: the request deadline stops it with an error.
	src := "package p\nallow if { count([x | some x in numbers.range(1, 100000000); x % 7 == 0]) > 0 }\n"
	set, err := LoadModules(context.Background(), map[string]string{"p.rego": src}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := set.Prepare(context.Background(), "p")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = q.Eval(ctx, doc(requestValue("POST", "/", nil, "")), nil)
	if err == nil {
		t.Fatal("a policy past its deadline must fail (fail closed), not decide")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("evaluation stopped after %v; the deadline was 100ms", el)
	}
}

// TestAllowOnlyPackages: a package whose only decision rule is allow is queried for allow
// alone; its helper rules still work, and the answers are those of the whole package.
func TestAllowOnlyPackages(t *testing.T) {
	cases := []struct {
		src       string
		allow     bool
		allowOnly bool
		wantErr   bool
	}{
		{"package p\nok := true\nallow if ok\n", true, true, false},
		{"package p\nok := false\nallow if ok\n", false, true, false},
		{"package p\nallow := \"yes\"\n", false, true, true},
		{"package p\nallow := true\ndeny contains \"no\"\n", false, false, false},
		{"package p\nallow := true\nlabels := {\"a\": \"b\"}\n", true, false, false},
	}
	for _, c := range cases {
		set, err := LoadModules(context.Background(), map[string]string{"p.rego": c.src}, nil, Options{})
		if err != nil {
			t.Fatal(err)
		}
		q, err := set.Prepare(context.Background(), "p")
		if err != nil {
			t.Fatal(err)
		}
		if q.allowOnly != c.allowOnly {
			t.Errorf("%q: allowOnly = %v, want %v", c.src, q.allowOnly, c.allowOnly)
		}
		d, err := q.Eval(context.Background(), doc(requestValue("POST", "/", nil, "")), nil)
		if (err != nil) != c.wantErr {
			t.Fatalf("%q: err = %v, want error %v", c.src, err, c.wantErr)
		}
		if err == nil && (d.Allow && !d.Denied()) != c.allow {
			t.Errorf("%q: allowed = %v, want %v (%+v)", c.src, d.Allow && !d.Denied(), c.allow, d)
		}
	}
}

// TestDataFileErrorsNameTheLine: a JSON data file that does not parse is refused with the
// line of the error, as a Rego file's is.
func TestDataFileErrorsNameTheLine(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(dir+"/p.rego", []byte("package p\nallow := true\n"), 0o644)
	os.WriteFile(dir+"/data.json", []byte("{\"a\": 1,\n \"b\": 2,\n \"c\": }\n"), 0o644)
	_, err := Load(context.Background(), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "data.json:3: invalid character '}'") {
		t.Fatalf("a bad data.json: %v, want data.json:3", err)
	}
}
