package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/hookwall/hookwall/engine/policy/internal/fastpath"
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
	// Functions: constant and variable arguments, a repeated argument, a default, a function
	// undefined for some arguments, one whose body fails with a built-in error, and calls
	// repeated with the same arguments (memoized).
	"func_basic.rego": `package t.func_basic
level("a") := 1
level("b") := 2
level(v) := 3 if v == "c"
default weight(_) := 0
weight(x) := to_number(x) if x != ""
pair(a, a) := "same"
pair(a, b) := "diff" if a != b
allow if level(input.request.headers["x-v"]) >= 2
deny contains "low" if level(input.request.headers["x-v"]) < 2
deny contains "none" if not level(input.request.headers["x-v"])
labels := {"w": weight(input.request.headers["x-n"]), "again": weight(input.request.headers["x-n"]), "p": pair(input.request.method, "POST")}
status := 400 if weight(input.request.headers["x-n"]) > 3
`,
	// Two definitions of a function that disagree for some arguments: topdown's conflict.
	"func_conflict.rego": `package t.func_conflict
tag(v) := "x" if v == "a"
tag(v) := "y" if startswith(v, "a")
tag(v) := "x" if v == "b"
allow if tag(input.request.headers["x-v"]) == "x"
`,
	// Functions whose value is false: a call as an expression fails; true and false conflict.
	"func_bool.rego": `package t.func_bool
ok(v) := true if v == "1"
ok(v) := false if v == "yes"
both(v) if v == "yes"
both(v) := false if v == "yes"
allow if ok(input.request.headers["x-a"])
deny contains "not ok" if not ok(input.request.headers["x-a"])
status := 409 if both(input.request.headers["x-block"])
`,
	// Functions calling functions, with the signature check inside: memoized per arguments.
	"func_verify.rego": `package t.func_verify
check(name) := hookwall.webhook.verify("github", input.request, {"secret": name})
valid(name) := check(name).valid
reason(name) := check(name).reason
allow if { valid("gh"); reason("gh") == "" }
deny contains reason("gh") if not valid("gh")
status := 401 if not valid("gh")
`,
	// Else chains on complete rules and functions, with errors, defaults and conflicts in
	// the first branch.
	"else_chain.rego": `package t.else_chain
grade := "high" if to_number(input.request.headers["x-n"]) > 3
else := "mid" if to_number(input.request.headers["x-n"]) > 0
else := "none"
size(xs) := "big" if count(xs) > 2
else := "small" if count(xs) > 0
pick := x if { some x in input.request.json.items; x > 3 } else := 0
allow if grade == "high"
deny contains grade if grade != "high"
labels := {"size": size(input.request.json.items), "pick": pick}
status := 400 if grade == "none"
`,
	// Early exit: rules and functions whose definitions all have one constant value stop at
	// the first that holds, so later errors are never raised; others evaluate everything.
	"early_exit.rego": `package t.early_exit
allow if input.request.headers["x-a"]
allow if to_number(input.request.headers["x-n"]) > 0
known(v) if v == "a"
known(v) if to_number(v) > 0
first_num := 1 if { some t in input.request.json.tags; to_number(t) > 0 }
status := 401 if { some t in input.request.json.tags; to_number(t) > 5 }
status := 402 if input.request.headers["x-b"]
deny contains "known" if known(input.request.headers["x-v"])
labels := {"first": first_num}
`,
	// Rules with reference heads: an object of constant keys (empty when none is defined),
	// with a default, a conflict, and a partial object with variable keys.
	"ref_heads.rego": `package t.ref_heads
allow if labels.kind == "a"
labels.kind := input.request.headers["x-v"]
labels["method"] := input.request.method if input.request.path == "/"
labels.dup := 1 if input.request.headers["x-a"]
labels.dup := 2 if input.request.headers["x-b"]
default labels.block := "none"
labels.block := input.request.headers["x-block"]
upstream_headers[k] := v if { some k, v in input.request.headers; startswith(k, "x-ok") }
upstream_headers[k] := "dup" if { some k, _ in input.request.headers; k == "x-ok2" }
status := 400 + count(upstream_headers) if count(labels) < 3
`,
	// An object of constant keys none of which is defined is empty, not undefined.
	"ref_heads_empty.rego": `package t.ref_heads_empty
allow if count(labels) == 0
labels.a := 1 if input.request.headers["x-a"]
`,
	// Only allow is queried: a reference to one key evaluates that key's rule alone.
	"ref_head_only.rego": `package t.ref_head_only
allow if info.ok == true
info.ok := true if input.request.headers["x-a"]
info.bad := to_number(input.request.headers["x-n"])
`,
	// A library package and references to its rules and functions from another package;
	// its rules are evaluated only as far as they are referred to.
	"lib.rego": `package t.lib
methods := {"POST"}
suffix := "!"
shout(s) := concat("", [upper(s), suffix])
bad := to_number(input.request.headers["x-n"])
level := 2 if input.request.headers["x-a"]
allow if level == 2
`,
	"cross_pkg.rego": `package t.cross_pkg
import data.t.lib
allow if { input.request.method in lib.methods; lib.level == 2 }
labels := {"s": lib.shout(input.request.method)}
deny contains "bad" if lib.bad > 3
`,
	"cross_pkg_only.rego": `package t.cross_pkg_only
import data.t.lib
allow if lib.shout(input.request.headers["x-a"]) == "YES!"
`,
	// Many distinct calls of one function (the memo finds them by hash), and again.
	"func_many.rego": `package t.func_many
sq(x) := x * x
nums := [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40]
allow if sum([sq(x) | some x in input.request.json.items]) > 20
labels := {"n": count({sq(x) | some x in nums}), "again": sum([sq(x) | some x in nums])}
`,
	// Comprehensions of every kind, one with an object key conflict.
	"comprehensions.rego": `package t.comprehensions
big := [x | some x in input.request.json.items; x > 2]
names := {k | some k, _ in input.request.headers}
by_val := {v: k | some k, v in input.request.headers}
allow if count(big) > 0
deny contains sprintf("%d headers", [count(names)]) if count(names) > 1
labels := {"big": big, "n": count(by_val)}
`,
	// input.request read in every way: through a rule and a local bound to it, one header,
	// headers by a bound key and by iteration, a missing field, whole as a function's
	// argument and as verify's operand (directly and through the local).
	"request_views.rego": `package t.request_views
req := input.request
h := req.headers
allow if {
	r := input.request
	not r.headers["x-block"]
	hookwall.webhook.verify("github", r, {"secret": "gh"}).valid
}
allow if {
	req.method == "POST"
	h["x-a"] == "1"
}
deny contains k if { some k, v in input.request.headers; v == "yes" }
deny contains "absent" if { not input.request.nothere; input.request.headers["x-n"] == "abc" }
deny contains "bad signature" if {
	input.request.headers["x-hub-signature-256"]
	not hookwall.webhook.verify("github", input.request, {"secret": "gh"}).valid
}
status := 418 if { some k in ["x-v", "x-n"]; input.request.headers[k] == "b" }
labels := {"h": count(input.request.headers), "m": req.method, "v": v_of(input.request), "j": object.get(input.request, "json", null)}
v_of(r) := r.headers["x-v"]
`,
	// A variable unified with a reference that it indexes: each key is compared with its
	// value (or a composite built from the key), not bound twice; and a reference indexed
	// by what the other side's enumeration binds.
	"unify_self.rego": `package t.unify_self
fixed contains k if { some k; input.request.json.m[k] = k }
fixed_eq contains k if { some k; input.request.json.m[k] == k }
by contains k if { some k; input.request.json.m[k] = {"by": k} }
same contains i if { some i; input.request.json.l[i] = input.request.json.r[i] }
allow if count(fixed) > 0
deny contains sprintf("by %v", [k]) if some k in by
labels := {"same": same, "fixed": fixed, "eq": fixed_eq}
`,
	// The whole input as a value that outlives the evaluation.
	"loopback.rego": `package t.loopback
allow if input.request.headers["x-a"]
labels := {"in": input, "again": x} if x := input
`,
	// The whole input read beside input.request.
	"request_whole.rego": `package t.request_whole
allow if { x := input; x.request.headers["x-a"] == "1" }
allow if count(input) > 2
labels := {"keys": [k | some k, _ in input], "route": object.get(input, "route", "none")}
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

// evalBoth evaluates in with the fast path and with topdown, which must decide alike, and
// with the fast path again given input.request apart (EvalRequest): req when it is not nil,
// else a view of in's own request. The document then holds a decoy request that must not
// be read.
func evalBoth(t testing.TB, q *Query, in ast.Value, req Request) (Decision, error) {
	t.Helper()
	fd, ferr := q.Eval(context.Background(), in, nil)
	od, oerr := q.Eval(context.Background(), in, &EvalParams{OPA: true})
	if (ferr != nil) != (oerr != nil) {
		t.Fatalf("%s: fast path error %v, topdown error %v\ninput %v", q.pkg, ferr, oerr, in)
	}
	// Topdown lists a conflict's values after its message; the fast path stops at the message.
	if ferr != nil && ferr.Error() != strings.Split(oerr.Error(), ":\n")[0] {
		t.Fatalf("%s: fast path error %q, topdown error %q\ninput %v", q.pkg, ferr, oerr, in)
	}
	if !reflect.DeepEqual(fd, od) {
		t.Fatalf("%s: fast path decided %+v, topdown %+v\ninput %v", q.pkg, fd, od, in)
	}
	if req == nil {
		t := in.(ast.Object).Get(ast.StringTerm("request"))
		if t == nil {
			return fd, ferr // nothing to hold apart
		}
		req = objRequest{t.Value.(ast.Object)}
	}
	rd, rerr := q.EvalRequest(context.Background(), fastpath.WithRequest(in, ast.NewTerm(decoyRequest)), req, nil)
	if (rerr != nil) != (ferr != nil) || (rerr != nil && rerr.Error() != ferr.Error()) {
		t.Fatalf("%s: with the request apart, error %v; with it in the document, %v\ninput %v", q.pkg, rerr, ferr, in)
	}
	if !reflect.DeepEqual(rd, fd) {
		t.Fatalf("%s: with the request apart, decided %+v; with it in the document, %+v\ninput %v", q.pkg, rd, fd, in)
	}
	if !q.NeedsDocument() {
		nd, nerr := q.EvalRequest(context.Background(), nil, req, nil)
		if (nerr != nil) != (ferr != nil) || (nerr != nil && nerr.Error() != ferr.Error()) || !reflect.DeepEqual(nd, fd) {
			t.Fatalf("%s: with the request alone decided %+v (%v); with the document, %+v (%v)\ninput %v", q.pkg, nd, nerr, fd, ferr, in)
		}
	}
	return fd, ferr
}

// decoyRequest stands where EvalRequest must not look: any read of it changes decisions.
var decoyRequest = requestValue("DECOY", "/decoy", map[string]string{"x-a": "yes", "x-block": "yes", "x-n": "9"}, "decoy")

// objRequest is a Request read from an input.request object, with the fields view verify
// reads a captured request through.
type objRequest struct{ obj ast.Object }

func (o objRequest) Object() ast.Object         { return o.obj }
func (o objRequest) Field(key string) *ast.Term { return o.obj.Get(ast.StringTerm(key)) }
func (o objRequest) Header(name string) *ast.Term {
	if h := o.Field("headers"); h != nil {
		return h.Value.(ast.Object).Get(ast.StringTerm(name))
	}
	return nil
}
func (o objRequest) Text(key string) string {
	if t := o.Field(key); t != nil {
		s, _ := t.Value.(ast.String)
		return string(s)
	}
	return ""
}
func (o objRequest) Get(name string) string {
	if t := o.Header(name); t != nil {
		s, _ := t.Value.(ast.String)
		return string(s)
	}
	return ""
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
		{"X-N": "5"}, {"X-N": "1"}, {"X-N": "abc"}, {"X-A": "1", "X-B": "1"}, {"X-A": "yes", "X-N": "abc"},
		{"X-Hub-Signature-256": "sha256=" + hmacHex("s3cret", body), "X-GitHub-Delivery": "d-1"},
		{"X-Hub-Signature-256": "sha256=" + hmacHex("wrong", body), "X-GitHub-Delivery": "d-2"},
	}
	jsons := []string{"", `{"items":[1,3,4]}`, `{"items":[3,4,4]}`, `{"items":[]}`, `{"items":"str"}`,
		`{"tags":["a","z","q"]}`, `{"tags":["1","x"]}`, `{"tags":["6","x"]}`, `{"items":[1,2,6,7]}`, `{"a":1,"b":1}`, `{"a":[1],"b":[2]}`, `[1,2]`,
		`{"m":{"a":"a","b":"c"},"l":[1,"x",3],"r":[1,"y",3,4]}`, `{"m":{"c":{"by":"c"},"d":{"by":"e"}},"l":[2],"r":[2]}`}
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

// corpusFails are the corpus packages some corpus input makes fail (a conflict, a built-in's
// error); the others must never fail, errors their rules would raise being out of reach.
var corpusFails = map[string]bool{
	"t.conflict": true, "t.builtin_error": true, "t.helper_error": true, "t.unify_enum": true,
	"t.func_basic": true, "t.func_conflict": true, "t.func_bool": true, "t.else_chain": true,
	"t.early_exit": true, "t.ref_heads": true, "t.cross_pkg": true, "t.comprehensions": true,
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
			d, err := evalBoth(t, q, in, nil)
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
		if wantErr := corpusFails[pkg]; wantErr != (failed > 0) {
			t.Errorf("%s: %d evaluations failed; want failures %v", pkg, failed, wantErr)
		}
	}
}

// TestFastPathSemantics pins the corpus outcomes that show topdown's semantics, beyond both
// evaluators agreeing: early exit and the rule index skipping errors, a reference to one key
// evaluating that key alone, and the conflicts of functions, constant keys and object
// comprehensions (with topdown's message, which lists the values after it).
func TestFastPathSemantics(t *testing.T) {
	set := loadCorpus(t)
	tags := ast.StringTerm("json")
	cases := []struct {
		pkg     string
		headers map[string]string
		json    string
		allow   bool   // allowed: allow and no deny reason
		err     string // "" none; else a part of both errors
	}{
		// allow's definitions agree on true: the first that holds settles it, and the
		// second's to_number("abc") is never evaluated.
		{pkg: "t.early_exit", headers: map[string]string{"X-A": "yes", "X-N": "abc"}, allow: true},
		{pkg: "t.early_exit", headers: map[string]string{"X-N": "abc"}, err: "to_number"},
		// status 402 needs x-b, so the index leaves only 401, whose first solution settles it
		// before to_number("x"); with x-b both are candidates and every solution is checked.
		{pkg: "t.early_exit", json: `{"tags":["6","x"]}`, headers: map[string]string{"X-A": "1"}, allow: true},
		{pkg: "t.early_exit", json: `{"tags":["6","x"]}`, headers: map[string]string{"X-A": "1", "X-B": "1"}, err: "to_number"},
		// A function whose definitions agree: known("a") stops before to_number("a").
		{pkg: "t.early_exit", headers: map[string]string{"X-A": "1", "X-V": "a"}, allow: false},
		{pkg: "t.early_exit", headers: map[string]string{"X-A": "1", "X-V": "b"}, err: "to_number"},
		// info.ok alone is evaluated: info.bad's error is out of reach.
		{pkg: "t.ref_head_only", headers: map[string]string{"X-A": "yes", "X-N": "abc"}, allow: true},
		// A library rule that fails is evaluated only when referred to.
		{pkg: "t.lib", headers: map[string]string{"X-A": "yes", "X-N": "abc"}, allow: true},
		{pkg: "t.cross_pkg", headers: map[string]string{"X-A": "yes", "X-N": "abc"}, err: "to_number"},
		{pkg: "t.cross_pkg", headers: map[string]string{"X-A": "yes", "X-N": "1"}, allow: true},
		{pkg: "t.cross_pkg_only", headers: map[string]string{"X-A": "yes", "X-N": "abc"}, allow: true},
		{pkg: "t.func_conflict", headers: map[string]string{"X-V": "a"}, err: "function data.t.func_conflict.tag produced conflicting values for the same inputs"},
		{pkg: "t.func_conflict", headers: map[string]string{"X-V": "b"}, allow: true},
		{pkg: "t.func_bool", headers: map[string]string{"X-A": "yes", "X-Block": "yes"}, err: "function data.t.func_bool.both produced conflicting values"},
		{pkg: "t.func_bool", headers: map[string]string{"X-A": "1", "X-Block": "no"}, allow: true},
		{pkg: "t.func_basic", headers: map[string]string{"X-V": "b", "X-N": "abc"}, err: "to_number"},
		{pkg: "t.func_basic", headers: map[string]string{"X-V": "b", "X-N": "2"}, allow: true},
		{pkg: "t.ref_heads", headers: map[string]string{"X-V": "a", "X-A": "1", "X-B": "1"}, err: "rule data.t.ref_heads.labels.dup produced conflicting values"},
		{pkg: "t.ref_heads", headers: map[string]string{"X-V": "a", "X-Ok2": "1"}, err: "object keys must be unique"},
		{pkg: "t.ref_heads", headers: map[string]string{"X-V": "a", "X-Ok1": "1"}, allow: true},
		{pkg: "t.comprehensions", headers: map[string]string{"X-A": "1", "X-B": "1"}, json: `{"items":[3]}`, err: "object keys must be unique"},
		{pkg: "t.else_chain", headers: map[string]string{"X-N": "5"}, json: `{"items":[1,2,6,7]}`, err: "rule data.t.else_chain.pick produced conflicting values"},
		{pkg: "t.else_chain", headers: map[string]string{"X-N": "5"}, json: `{"items":[1,2,6]}`, allow: true},
	}
	for _, c := range cases {
		req := requestValue("POST", "/", c.headers, "{}")
		if c.json != "" {
			req.Insert(tags, ast.MustParseTerm(c.json))
		}
		q := prepareCompiled(t, set, c.pkg)
		d, err := evalBoth(t, q, doc(req), nil)
		_, oerr := q.Eval(context.Background(), doc(req), &EvalParams{OPA: true})
		switch {
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(oerr.Error(), c.err)):
			t.Errorf("%s %v %s: fast path error %v, topdown %v; want both to mention %q", c.pkg, c.headers, c.json, err, oerr, c.err)
		case c.err == "" && err != nil:
			t.Errorf("%s %v %s: %v", c.pkg, c.headers, c.json, err)
		case c.err == "" && d.Denied() == c.allow:
			t.Errorf("%s %v %s: decision %+v, want allowed %v", c.pkg, c.headers, c.json, d, c.allow)
		}
	}
}

// countingSecrets counts lookups: the verify built-in looks its secret up once per call.
type countingSecrets struct {
	secretMap
	reads int
}

func (s *countingSecrets) Get(name string) ([]byte, bool) {
	s.reads++
	return s.secretMap.Get(name)
}

// TestFastPathMemoizesFunctions: a function is evaluated once per evaluation and arguments,
// as topdown caches it: t.func_verify calls check("gh") from valid, reason, allow, deny and
// status, and the signature is checked once.
func TestFastPathMemoizesFunctions(t *testing.T) {
	secrets := &countingSecrets{secretMap: secretMap{"gh": []byte("s3cret")}}
	set, err := LoadModules(context.Background(), fastCorpus, nil, Options{Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	q := prepareCompiled(t, set, "t.func_verify")
	body := `{"a":1}`
	for _, sig := range []string{hmacHex("s3cret", body), hmacHex("wrong", body)} {
		in := doc(requestValue("POST", "/", map[string]string{"X-Hub-Signature-256": "sha256=" + sig}, body))
		for _, o := range []*EvalParams{nil, {OPA: true}} {
			secrets.reads = 0
			d, err := q.Eval(context.Background(), in, o)
			if err != nil {
				t.Fatal(err)
			}
			if secrets.reads != 1 {
				t.Errorf("opa=%v: the signature was checked %d times, want once (decision %+v)", o != nil, secrets.reads, d)
			}
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
						d, err := evalBoth(t, q, doc(req), nil)
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
		"with":                "allow if { x with input as {} }\nx := true",
		"every":               "allow if every x in input.xs { x > 1 }",
		"nondeterministic":    "allow if time.now_ns() > 0",
		"deep reference head": "allow := true\nlabels.a.b := 1",
		// A function under a reference head makes its first key an object of the package
		// document, beside any rule under the same key, in either order.
		"function reference head":        "allow := true\nlabels.fmt(x) := x",
		"function beside a constant key": "allow := true\nlabels.team := \"a\"\nlabels.fmt(x) := x",
		"constant key beside a function": "allow := true\nlabels.fmt(x) := x\nlabels.team := \"a\"",
		"function beside a set":          "allow := true\ndeny contains \"x\" if input.a\ndeny.check(x) := x",
		"set beside a function":          "allow := true\ndeny.check(x) := x\ndeny contains \"x\" if input.a",
		"function beside a rule":         "allow := true\ndeny := {\"x\"} if input.a\ndeny.check(x) := x",
		"function under deny":            "allow := true\ndeny.check(x) := x",
		"variable reference head":        "allow := true\nlabels.a[x] := 1 if some x in input.xs",
		"argument pattern":               "f([x]) := x\nallow if f([1]) == 1",
		"set with reference head":        "allow := true\nlabels.a contains 1",
		"package document":               "allow if count(data.q) == 1",
		"one member of a set":            "allow if deny.x\ndeny contains \"x\" if input.a",
		"one key of an object":           "allow if input.k in {\"a\"}\nlabels := o\no[k] := 1 if some k in input.ks\nx := o[input.k]",
		"indexed comprehension":          "allow if { some y in input.ys; count([x | some x in input.xs; x == y]) > 0 }",
	}
	for name, rules := range cases {
		set, err := LoadModules(context.Background(), map[string]string{"p.rego": "package p\n" + rules + "\n", "q.rego": "package q\nx := 1\n"}, nil, Options{})
		if err != nil {
			t.Logf("%s: OPA refuses it: %v", name, err)
			continue
		}
		q, err := set.Prepare(context.Background(), "p")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ev, why := q.Evaluator()
		if ev != "opa" || !strings.Contains(why, "p.rego:") {
			t.Errorf("%s: evaluator %s (%q); want opa with the file and line", name, ev, why)
		} else {
			t.Logf("%-24s %s", name, why)
		}
		_, err = q.Eval(context.Background(), doc(requestValue("POST", "/", nil, "")), nil)
		switch name {
		case "every", "indexed comprehension":
		case "function under deny":
			// Topdown makes deny the object of the function's prefix: not a set of reasons.
			if err == nil || !strings.Contains(err.Error(), "rule deny must be a set of strings, got object") {
				t.Errorf("%s: topdown evaluation: %v, want deny refused as an object", name, err)
			}
		default:
			if err != nil {
				t.Errorf("%s: topdown evaluation failed: %v", name, err)
			}
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
			evalBoth(t, q, in, nil)
		}
	})
}

// TestNeedsRequest: a compiled package that cannot read input.request says so, so the server
// skips building it; and such a package decides the same with the request left out.
func TestNeedsRequest(t *testing.T) {
	cases := map[string]struct{ request, document bool }{
		"allow := true": {false, false},
		"allow if input.filters.guard.labels.verdict == \"ok\"":                                   {false, true},
		"allow if input.route.name == \"r\"":                                                      {false, true},
		"allow if input.request.method == \"POST\"":                                               {true, false},
		"allow if count(input) > 0":                                                               {true, true},
		"x := input\nallow if x.request.method == \"POST\"":                                       {true, true},
		"allow if data.lib.post":                                                                  {true, false},
		"allow if { some k, _ in input; k == \"request\" }":                                       {true, true},
		"allow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"gh\"}).valid": {true, false},
		"r := input.request\nallow if r.headers[\"x-a\"] == \"1\"":                                {true, false},
	}
	lib := "package lib\npost if input.request.method == \"POST\"\n"
	for rules, want := range cases {
		set, err := LoadModules(context.Background(), map[string]string{"p.rego": "package p\n" + rules + "\n", "lib.rego": lib}, nil, Options{Secrets: secretMap{"gh": []byte("s")}})
		if err != nil {
			t.Fatalf("%q: %v", rules, err)
		}
		q := prepareCompiled(t, set, "p")
		if got := q.NeedsRequest(); got != want.request {
			t.Errorf("%q: NeedsRequest = %v, want %v", rules, got, want.request)
		}
		if got := q.NeedsDocument(); got != want.document {
			t.Errorf("%q: NeedsDocument = %v, want %v", rules, got, want.document)
		}
		if want.request {
			continue
		}
		for _, filters := range []string{`{}`, `{"guard": {"labels": {"verdict": "ok"}}}`} {
			req := requestValue("POST", "/", map[string]string{"X-A": "1"}, "{}")
			full := ast.NewObject(ast.Item(ast.StringTerm("request"), ast.NewTerm(req)), ast.Item(ast.StringTerm("filters"), ast.MustParseTerm(filters)), ast.Item(ast.StringTerm("route"), ast.MustParseTerm(`{"name": "r"}`)))
			bare := ast.NewObject(ast.Item(ast.StringTerm("request"), ast.ObjectTerm()), ast.Item(ast.StringTerm("filters"), ast.MustParseTerm(filters)), ast.Item(ast.StringTerm("route"), ast.MustParseTerm(`{"name": "r"}`)))
			d1, err1 := evalBoth(t, q, full, nil)
			d2, err2 := evalBoth(t, q, bare, nil)
			if !reflect.DeepEqual(d1, d2) || (err1 == nil) != (err2 == nil) {
				t.Errorf("%q: without the request decided %+v (%v), with it %+v (%v)", rules, d2, err2, d1, err1)
			}
		}
	}
}

// TestLabelValueMatchesJSON: labels are converted in one pass, to what OPA's ast.JSON gives,
// and an object key that is not a string takes OPA's conversion.
func TestLabelValueMatchesJSON(t *testing.T) {
	for _, src := range []string{
		`{"s": "x", "n": 1.5, "i": 42, "b": true, "z": null}`,
		`{"a": [1, "two", {"three": [3]}], "set": {"b", "a", "c"}, "o": {"k": {"k2": false}}}`,
		`{}`,
	} {
		v := ast.MustParseTerm(src).Value
		got, ok := labelValue(v)
		want, err := ast.JSON(v)
		if !ok || err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: labelValue %#v (%v), ast.JSON %#v (%v)", src, got, ok, want, err)
		}
	}
	if _, ok := labelValue(ast.MustParseTerm(`{1: "one"}`).Value); ok {
		t.Error("a number key must take OPA's conversion")
	}
	set, err := LoadModules(context.Background(), map[string]string{"p.rego": "package p\nallow := true\nlabels := {1: \"one\", \"n\": 2}\n"}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := evalBoth(t, prepareCompiled(t, set, "p"), doc(requestValue("POST", "/", nil, "")), nil)
	if err != nil || d.Labels["1"] != "one" || d.Labels["n"] != json.Number("2") {
		t.Fatalf("labels %#v, %v", d.Labels, err)
	}
}

// TestFastPathHonoursDeadline: a compiled policy whose work grows with its input (a
// quadratic scan of a JSON array) is stopped by the request's deadline, as topdown would be,
// and fails closed.
func TestFastPathHonoursDeadline(t *testing.T) {
	src := "package p\nallow if { some x in input.request.json.a; some y in input.request.json.a; x + y < 0 }\n"
	set, err := LoadModules(context.Background(), map[string]string{"p.rego": src}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := prepareCompiled(t, set, "p")
	items := make([]any, 20000) // 4×10⁸ pairs: minutes of work without a deadline
	for i := range items {
		items[i] = i
	}
	req := requestValue("POST", "/", nil, "")
	req.Insert(ast.StringTerm("json"), ast.NewTerm(ast.MustInterfaceToValue(map[string]any{"a": items})))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = q.Eval(ctx, doc(req), nil)
	if err == nil {
		t.Fatal("a policy past its deadline must fail (fail closed), not decide")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("evaluation stopped after %v; the deadline was 100ms", el)
	}
	t.Logf("stopped after %v: %v", time.Since(start).Round(time.Millisecond), err)
}

// TestNumberBeyondFloat64IsDecidedAsOPADecides: a sender spells an amount 10e399 (the
// request's JSON parser takes it), the policy compares it with 1e400. Topdown's rule index
// hashes the two apart and the rule does not hold; the package is left to topdown, which
// denies, as `opa test` would.
func TestNumberBeyondFloat64IsDecidedAsOPADecides(t *testing.T) {
	src := "package p\ndefault allow := false\nallow if input.request.json.amount == 1e400\n"
	set, err := LoadModules(context.Background(), map[string]string{"p.rego": src}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := set.Prepare(context.Background(), "p")
	if err != nil {
		t.Fatal(err)
	}
	if name, why := q.Evaluator(); name == "compiled" || !strings.Contains(why, "1e400") {
		t.Errorf("evaluated by %s (%s); want topdown, naming the number", name, why)
	}
	in := ast.MustParseTerm(`{"request": {"method": "POST", "json": {"amount": 10e399}}}`).Value
	d, err := q.Eval(context.Background(), in, nil)
	if err != nil || d.Allow {
		t.Fatalf("decided %+v (err %v); OPA does not allow", d, err)
	}
}
