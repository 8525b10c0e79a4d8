package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// fastCorpus exercises every construct of the compiled fast path. Each package must compile
// to it (TestFastPathCovers), and every evaluation must equal topdown's (evalBoth).
var fastCorpus = map[string]string{
	"iter_array.rego": `package t.iter_array
allow if { some x in input.request.json.items; x > 2 }
deny contains sprintf("item %v", [x]) if { some x in input.request.json.items; x > 5 }
status := 422 if count(deny) > 0
`,
	"iter_object.rego": `package t.iter_object
allow if { some k, v in input.request.headers; startswith(k, "x-ok"); v == "1" }
labels := {"n": count(input.request.headers)}
`,
	"negation.rego": `package t.negation
allow if { not input.request.headers["x-block"]; not bad }
bad if { some h in ["x-evil", "x-worse"]; input.request.headers[h] }
deny contains "blocked" if input.request.headers["x-block"] == "yes"
`,
	"conflict.rego": `package t.conflict
allow := true
status := 401 if input.request.headers["x-a"]
status := 402 if input.request.headers["x-b"]
`,
	"builtin_error.rego": `package t.builtin_error
allow if to_number(input.request.headers["x-n"]) > 3
`,
	"defaults.rego": `package t.defaults
default allow := false
allow if input.request.method == "POST"
default status := 418
status := 400 if input.request.path == "/bad"
`,
	"sets.rego": `package t.sets
allowed := {"a", "b"}
allow if input.request.headers["x-v"] in allowed
deny contains x if { some x in input.request.json.tags; not allowed[x] }
`,
	"objects.rego": `package t.objects
limits := {"a": 1, "b": 2}
allow if limits[input.request.headers["x-v"]] >= 1
rate_limit := {"key": concat("/", [input.request.remote_ip, input.request.headers["x-v"]]), "limit": limits[input.request.headers["x-v"]], "per": "1m"}
`,
	"unify_enum.rego": `package t.unify_enum
allow if { input.request.json.items[i] = 3; i > 0 }
labels := {"idx": i} if input.request.json.items[i] == 4
`,
	"solutions.rego": `package t.solutions
allow if { some x in input.request.json.items; x == 1 }
upstream_headers := {"X-Count": sprintf("%d", [count(input.request.json.items)])} if is_array(input.request.json.items)
`,
	"nested.rego": `package t.nested
a := input.request.headers["x-a"]
b := upper(a)
c := {"v": b, "w": [a, b]}
allow if c.w[1] == "YES"
labels := c
`,
	"helper_error.rego": `package t.helper_error
allow := true
helper := to_number(input.request.headers["x-n"])
deny contains "never" if input.request.headers["x-never"]
`,
	"compare.rego": `package t.compare
pair := [input.request.method, input.request.path]
allow if pair == ["POST", "/"]
deny contains "get" if { pair[0] != "POST" }
labels := {"same": x} if { x := input.request.json.a; x == input.request.json.b }
`,
	"verify.rego": `package t.verify
sig := hookwall.webhook.verify("github", input.request, {"secret": "gh"})
allow if sig.valid
deny contains sig.reason if not sig.valid
dedupe := {"key": input.request.headers["x-github-delivery"], "ttl": "1h"} if sig.valid
`,
}

func loadCorpus(t testing.TB) *Set {
	t.Helper()
	set, err := LoadModules(context.Background(), fastCorpus, nil, Options{Secrets: secretMap{"gh": []byte("s3cret")}})
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// evalBoth evaluates in with the fast path and with topdown and fails the test on any
// difference in the decision or in whether it failed.
func evalBoth(t testing.TB, q *Query, in ast.Value) (Decision, error) {
	t.Helper()
	fd, ferr := q.Eval(context.Background(), in, nil)
	od, oerr := q.Eval(context.Background(), in, &EvalOption{OPA: true})
	if (ferr != nil) != (oerr != nil) {
		t.Fatalf("%s: fast path error %v, topdown error %v\ninput %v", q.pkg, ferr, oerr, in)
	}
	if !reflect.DeepEqual(fd, od) {
		t.Fatalf("%s: fast path decided %+v, topdown %+v\ninput %v", q.pkg, fd, od, in)
	}
	return fd, ferr
}

func prepareCompiled(t testing.TB, set *Set, pkg string) *Query {
	t.Helper()
	q, err := set.Prepare(context.Background(), pkg)
	if err != nil {
		t.Fatal(err)
	}
	if name, why := q.Evaluator(); name != "compiled" {
		t.Fatalf("%s is evaluated by %s (%s); the fast path must cover it", pkg, name, why)
	}
	return q
}

// corpusInputs are requests that reach every branch of the corpus: missing and present
// headers, conflicting rules, bad numbers, JSON of every shape, good and bad signatures.
func corpusInputs() []ast.Value {
	body := `{"a":1}`
	headers := []map[string]string{
		nil,
		{"X-A": "1"}, {"X-B": "1"}, {"X-A": "yes", "X-B": "1"}, {"X-A": "yes"},
		{"X-V": "a"}, {"X-V": "b"}, {"X-V": "c"},
		{"X-Block": "yes"}, {"X-Block": "no"}, {"X-Evil": "1"},
		{"X-Ok1": "1", "X-Ok2": "2"}, {"X-Ok": "2"},
		{"X-N": "5"}, {"X-N": "1"}, {"X-N": "abc"},
		{"X-Hub-Signature-256": "sha256=" + hmacHex("s3cret", body), "X-GitHub-Delivery": "d-1"},
		{"X-Hub-Signature-256": "sha256=" + hmacHex("wrong", body), "X-GitHub-Delivery": "d-2"},
	}
	jsons := []string{"", `{"items":[1,3,4]}`, `{"items":[3,4,4]}`, `{"items":[]}`, `{"items":"str"}`,
		`{"tags":["a","z","q"]}`, `{"items":[1,2,6,7]}`, `{"a":1,"b":1}`, `{"a":[1],"b":[2]}`, `[1,2]`}
	var out []ast.Value
	for _, h := range headers {
		for _, js := range jsons {
			for _, mp := range [][2]string{{"POST", "/"}, {"GET", "/bad"}} {
				req := requestValue(mp[0], mp[1], h, body)
				req.Insert(ast_remote_ip, ast_remote_val)
				if js != "" {
					var v any
					if err := json.Unmarshal([]byte(js), &v); err != nil {
						panic(err)
					}
					req.Insert(ast.StringTerm("json"), ast.NewTerm(ast.MustInterfaceToValue(v)))
				}
				out = append(out, doc(req))
			}
		}
	}
	return out
}

// TestFastPathMatchesTopdown: every corpus package, on every corpus input, decides the same
// with the fast path as with topdown, errors included; and the corpus reaches the outcomes
// that matter, so the comparison is not between two empty answers.
func TestFastPathMatchesTopdown(t *testing.T) {
	set := loadCorpus(t)
	ins := corpusInputs()
	for _, pkg := range set.Packages() {
		q := prepareCompiled(t, set, pkg)
		var allowed, denied, failed int
		for _, in := range ins {
			d, err := evalBoth(t, q, in)
			switch {
			case err != nil:
				failed++
			case d.Denied():
				denied++
			default:
				allowed++
			}
		}
		t.Logf("%-16s %d inputs: %d allowed, %d denied, %d errors", pkg, len(ins), allowed, denied, failed)
		if allowed == 0 || denied+failed == 0 {
			t.Errorf("%s: the inputs never reach both outcomes (%d allowed, %d denied, %d errors)", pkg, allowed, denied, failed)
		}
		wantErr := pkg == "t.conflict" || pkg == "t.builtin_error" || pkg == "t.helper_error" || pkg == "t.unify_enum"
		if wantErr != (failed > 0) {
			t.Errorf("%s: %d evaluations failed; want failures %v", pkg, failed, wantErr)
		}
	}
}

// TestFastPathShippedPolicies holds the shipped policies the fast path covers to topdown's
// decisions, and to covering them at all: the benchmark's reference policy and the demo.
func TestFastPathShippedPolicies(t *testing.T) {
	const secret = "hookwall-demo-secret"
	sets := map[string]string{"bench.reference": "../../examples/bench/policies", "bench.none": "../../examples/bench/policies", "routes.github": "../../policies"}
	body := `{"ref":"refs/heads/main"}`
	for pkg, dir := range sets {
		set, err := Load(context.Background(), dir, Options{Secrets: secretMap{"github": []byte(secret)}})
		if err != nil {
			t.Fatal(err)
		}
		q := prepareCompiled(t, set, pkg)
		var allowed int
		for _, sig := range []string{hmacHex(secret, body), hmacHex("forged", body), ""} {
			for _, event := range []string{"push", "ping", "deployment", ""} {
				for _, ip := range []string{"127.0.0.1", "140.82.112.9", "203.0.113.7", "not-an-ip"} {
					for _, delivery := range []string{"", "72d3162e"} {
						h := map[string]string{"X-Hub-Signature-256": "sha256=" + sig, "X-GitHub-Event": event, "X-GitHub-Delivery": delivery}
						for k, v := range h {
							if v == "" || v == "sha256=" {
								delete(h, k)
							}
						}
						req := requestValue("POST", "/hooks/github", h, body)
						req.Insert(ast_remote_ip, ast.StringTerm(ip))
						d, err := evalBoth(t, q, doc(req))
						if err == nil && !d.Denied() {
							allowed++
						}
					}
				}
			}
		}
		if allowed == 0 {
			t.Errorf("%s: no request was allowed", pkg)
		}
	}
}

// TestFastPathRefusesOutsideItsSubset: constructs outside the subset leave the package with
// topdown, and say why, with the file and line.
func TestFastPathRefusesOutsideItsSubset(t *testing.T) {
	cases := map[string]string{
		"with":             "allow if { x with input as {} }\nx := true",
		"else":             "allow := true if input.a else := false",
		"function":         "f(x) := x\nallow if f(1) == 1",
		"comprehension":    "allow if count([x | some x in input.xs]) > 0",
		"reference head":   "allow := true\nlabels.a := 1",
		"nondeterministic": "allow if time.now_ns() > 0",
		"every":            "allow if every x in input.xs { x > 1 }",
	}
	for name, rules := range cases {
		set, err := LoadModules(context.Background(), map[string]string{"p.rego": "package p\n" + rules + "\n"}, nil, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		q, err := set.Prepare(context.Background(), "p")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ev, why := q.Evaluator()
		if ev != "opa" || !strings.Contains(why, "p.rego:") {
			t.Errorf("%s: evaluator %s (%q); want opa with the file and line", name, ev, why)
		}
		if _, err := q.Eval(context.Background(), doc(requestValue("POST", "/", nil, "")), nil); err != nil && name != "comprehension" && name != "every" {
			t.Errorf("%s: topdown evaluation failed: %v", name, err)
		}
	}
	set, err := LoadModules(context.Background(), map[string]string{"p.rego": "package p\nallow := true\n"}, nil, Options{OPAOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := set.Prepare(context.Background(), "p")
	if ev, _ := q.Evaluator(); ev != "opa" {
		t.Errorf("OPAOnly: evaluator %s, want opa", ev)
	}
}

// FuzzFastPathMatchesTopdown feeds arbitrary header values and JSON bodies to every corpus
// package and fails on any difference between the fast path and topdown.
func FuzzFastPathMatchesTopdown(f *testing.F) {
	f.Add("1", "a", "5", "yes", `{"items":[1,3,4]}`)
	f.Add("", "b", "x", "no", `{"tags":["a","z"],"a":{"k":1},"b":{"k":1}}`)
	f.Add("YES", "c", "1e3", "", `[1,"2",null,true]`)
	set := loadCorpus(f)
	var qs []*Query
	for _, pkg := range set.Packages() {
		qs = append(qs, prepareCompiled(f, set, pkg))
	}
	f.Fuzz(func(t *testing.T, xa, xv, xn, xblock, js string) {
		h := map[string]string{}
		for k, v := range map[string]string{"X-A": xa, "X-V": xv, "X-N": xn, "X-Block": xblock, "X-Ok" + xv: xa} {
			if v != "" {
				h[k] = v
			}
		}
		req := requestValue("POST", "/", h, js)
		req.Insert(ast_remote_ip, ast_remote_val)
		var v any
		if json.Unmarshal([]byte(js), &v) == nil {
			val, err := ast.InterfaceToValue(v)
			if err != nil {
				t.Skip(fmt.Sprint(err))
			}
			req.Insert(ast.StringTerm("json"), ast.NewTerm(val))
		}
		in := doc(req)
		for _, q := range qs {
			evalBoth(t, q, in)
		}
	})
}
