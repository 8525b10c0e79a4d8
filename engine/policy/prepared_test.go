package policy

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/input"
	"github.com/hookwall/hookwall/engine/policy/internal/fastpath"
)

// The compiler hands a verify call site's constant operands to Prepare once: the scheme and
// opts of a call with constant opts (which then has a verify of its own, its opts parsed), no
// opts for a call whose opts come from the request (which keeps the general verify).
func TestVerifyPreparedForConstantOpts(t *testing.T) {
	src := map[string]string{
		"c.rego": `package c
allow if hookwall.webhook.verify("github", input.request, {"secret": "gh"}).valid`,
		"r.rego": `package r
allow if hookwall.webhook.verify("github", input.request, {"secret": input.request.headers["x-secret-name"]}).valid`,
	}
	set, err := LoadModules(context.Background(), src, nil, Options{Secrets: secretMap{"gh": []byte("s3cret")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pkg      string
		opts     *ast.Term
		prepared bool
	}{
		{"c", ast.ObjectTerm(ast.Item(ast.StringTerm("secret"), ast.StringTerm("gh"))), true},
		{"r", nil, false},
	} {
		o := fastpath.Options{Decls: set.builtinDecls(), Data: set.data}
		o.Builtins, o.RequestBuiltins = set.fastBuiltins()
		rb := o.RequestBuiltins[VerifyName]
		var seen [][]*ast.Term
		var made []bool
		prepare := rb.Prepare
		rb.Prepare = func(consts []*ast.Term) fastpath.RequestFunc {
			seen = append(seen, consts)
			fn := prepare(consts)
			made = append(made, fn != nil)
			return fn
		}
		o.RequestBuiltins[VerifyName] = rb
		if _, err := fastpath.Compile(set.compiler, tc.pkg, o); err != nil {
			t.Fatal(err)
		}
		if len(seen) != 1 {
			t.Fatalf("%s: Prepare asked %d times, want once for the one call site", tc.pkg, len(seen))
		}
		c := seen[0]
		if len(c) != 3 || !c[0].Equal(ast.StringTerm("github")) || c[1] != nil || (c[2] == nil) != (tc.opts == nil) || (tc.opts != nil && !c[2].Equal(tc.opts)) {
			t.Errorf("%s: constants %v", tc.pkg, c)
		}
		if made[0] != tc.prepared {
			t.Errorf("%s: prepared %v, want %v", tc.pkg, made[0], tc.prepared)
		}
	}
	// Opts that do not parse, or name a secret that does not exist, are not prepared: the
	// call reports them, on every evaluation, as it did.
	v := verifier{secrets: secretMap{"gh": []byte("x")}}
	for _, opts := range []string{`{"secret": "missing"}`, `{"secret": "gh", "nope": 1}`, `{"secret": 7}`} {
		if v.prepare(ast.StringTerm("github"), ast.MustParseTerm(opts)) != nil {
			t.Errorf("opts %s prepared", opts)
		}
	}
}

// On captured requests, as the gateway evaluates them, the prepared verify answers as
// topdown does on the same request as a document: a valid signature, a wrong one, none, and a
// rotated secret (which takes effect on the next request, the old one then failing).
func TestPreparedVerifyAnswersAsTopdown(t *testing.T) {
	src, q := rotatingVerify(t)
	body := `{"a":1}`
	var b input.Builder
	check := func(sig string, want bool) {
		t.Helper()
		var req fasthttp.Request
		req.Header.SetMethod("POST")
		req.SetRequestURI("/hook")
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		req.SetBodyString(body)
		m := input.Meta{ID: "id", Scheme: "http", RemoteIP: "192.0.2.1", ReceivedAt: time.Now()}
		b.Reset()
		got, err := q.EvalRequest(context.Background(), nil, b.Capture(&req, &m), nil)
		if err != nil {
			t.Fatal(err)
		}
		b.Reset()
		want0, err := q.Eval(context.Background(), input.Document(b.Request(&req, &m), &m, nil), &EvalParams{OPA: true})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want0) {
			t.Fatalf("signature %q: compiled %+v, topdown %+v", sig, got, want0)
		}
		if allowed := got.Allow && !got.Denied(); allowed != want {
			t.Fatalf("signature %q: allowed %v, want %v (%+v)", sig, allowed, want, got)
		}
	}
	check("sha256="+hmacHex("first-secret", body), true)
	check("sha256="+hmacHex("other", body), false)
	check("", false)
	src.set([]byte("second-secret"))
	check("sha256="+hmacHex("first-secret", body), false)
	check("sha256="+hmacHex("second-secret", body), true)
}
