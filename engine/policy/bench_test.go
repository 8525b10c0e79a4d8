package policy

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/input"
)

// BenchmarkDefaultGitHubPolicy evaluates the shipped routes.github policy on a signed 2 KB push,
// with the compiled evaluator and with OPA's topdown, in the same run.
func BenchmarkDefaultGitHubPolicy(b *testing.B) {
	benchSignedPush(b, "../../policies", "routes.github", "hookwall-demo-secret", "/hooks/github", "192.0.2.1")
}

// BenchmarkReferencePolicy evaluates the benchmark's reference policy (examples/bench:
// verify, event allowlist, 4 CIDRs, dedupe, rate limit) on a signed 2 KB push, the policy
// part of the reference workload's CPU per request.
func BenchmarkReferencePolicy(b *testing.B) {
	benchSignedPush(b, "../../examples/bench/policies", "bench.reference", "bench-secret", "/reference", "127.0.0.1")
}

// benchSignedPush evaluates pkg on a GitHub push signed with secret (the "github" secret),
// which must be allowed with dedupe and rate_limit: compiled and with topdown on a built
// document, and compiled on the request as the gateway captures it ("captured": the capture
// of a fasthttp request is part of each iteration, as it is of each request).
func benchSignedPush(b *testing.B, dir, pkg, secret, path, ip string) {
	q, in, captured := signedPush(b, dir, pkg, secret, path, ip)
	b.Run("captured", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := captured(); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range []struct {
		name string
		o    *EvalParams
	}{{"compiled", nil}, {"opa", &EvalParams{OPA: true}}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := q.Eval(context.Background(), in, c.o); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// signedPush prepares pkg and a GitHub push signed with secret (the "github" secret), which
// must be allowed with dedupe and rate_limit, and returns the query, the push as a built
// input document, and an evaluation of the push as the gateway captures it (the capture of
// a fasthttp request is part of it, as it is of each request).
func signedPush(tb testing.TB, dir, pkg, secret, path, ip string) (*Query, ast.Value, func() (Decision, error)) {
	tb.Helper()
	set, err := Load(context.Background(), dir, Options{Secrets: secretMap{"github": []byte(secret)}})
	if err != nil {
		tb.Fatal(err)
	}
	q, err := set.Prepare(context.Background(), pkg)
	if err != nil {
		tb.Fatal(err)
	}
	body := `{"ref":"refs/heads/main","pad":"` + strings.Repeat("x", 2000) + `"}`
	req := requestValue("POST", path, map[string]string{
		"X-Hub-Signature-256": "sha256=" + hmacHex(secret, body),
		"X-GitHub-Event":      "push",
		"X-GitHub-Delivery":   "72d3162e-cc78-11e3-81ab-4c9367dc0958",
		"Content-Type":        "application/json",
	}, body)
	req.Insert(ast_remote_ip, ast.StringTerm(ip))
	in := doc(req)
	d, err := q.Eval(context.Background(), in, nil)
	if err != nil || !d.Allow || d.Denied() || d.Dedupe == nil || d.RateLimit == nil {
		tb.Fatalf("the benchmark request must be allowed with obligations: %+v %v", d, err)
	}
	var fr fasthttp.Request
	fr.Header.SetMethod("POST")
	fr.SetRequestURI(path)
	req.Get(ast.StringTerm("headers")).Value.(ast.Object).Foreach(func(k, v *ast.Term) {
		fr.Header.Set(string(k.Value.(ast.String)), string(v.Value.(ast.String)))
	})
	fr.SetBodyString(body)
	meta := &input.Meta{ID: "bench", Scheme: "http", RemoteIP: ip, RouteName: "bench", RoutePath: path}
	var ib input.Builder
	var rest ast.Value // as the server does: no document for a policy that reads none
	if q.NeedsDocument() {
		rest = input.Document(nil, meta, nil)
	}
	captured := func() (Decision, error) {
		ib.Reset()
		return q.EvalRequest(context.Background(), rest, ib.Capture(&fr, meta), nil)
	}
	if cd, err := captured(); err != nil || !reflect.DeepEqual(cd, d) {
		tb.Fatalf("on the captured request: %+v %v; on the document: %+v", cd, err, d)
	}
	return q, in, captured
}
