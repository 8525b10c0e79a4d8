package policy

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/input"
	"github.com/hookwall/hookwall/engine/internal/urlpath"
	"github.com/hookwall/hookwall/engine/internal/vectors"
	"github.com/hookwall/hookwall/engine/policy/internal/fastpath"
)

// countingCapture counts the request objects an evaluation asks the capture for.
type countingCapture struct {
	*input.Captured
	objects int
}

func (c *countingCapture) Object() ast.Object {
	c.objects++
	return c.Captured.Object()
}

// TestVerifyReadsTheCapturedRequest verifies every published vector with
// hookwall.webhook.verify given input.request straight from the request the gateway
// captured (no url option: a URL-signed vector arrives at its own origin), through the
// compiled evaluator, which must allow the valid vectors, deny them with the body tampered
// with, and never build the request object; evalBoth then holds it to topdown's decision and
// to the compiled one on the document.
func TestVerifyReadsTheCapturedRequest(t *testing.T) {
	ctx := context.Background()
	for _, v := range vectors.Load(t) {
		t.Run(v.Name, func(t *testing.T) {
			now := time.Unix(v.Now, 0)
			scheme := v.Scheme()
			if scheme == "svix" { // Svix signs as Standard Webhooks, with its own header names
				scheme = "standard"
			}
			mod := fmt.Sprintf("package t.v\nallow if hookwall.webhook.verify(%q, input.request, {\"secret\": \"k\"}).valid\n", scheme)
			set, err := LoadModules(ctx, map[string]string{"v.rego": mod}, nil,
				Options{Secrets: secretMap{"k": []byte(v.Key())}, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			q := prepareCompiled(t, set, "t.v")
			for _, body := range []string{v.Body, v.Body + "x"} {
				doc, c := vectorRequest(t, &v, body, v.Headers, false, false)
				cc := &countingCapture{Captured: c}
				d, err := q.EvalRequest(ctx, fastpath.WithRequest(doc, ast.NewTerm(decoyRequest)), cc, nil)
				if err != nil {
					t.Fatal(err)
				}
				if cc.objects != 0 {
					t.Errorf("the compiled evaluation built the request object %d times", cc.objects)
				}
				// The invalid vectors include checks beyond the signature (Linear's body
				// timestamp), which the provider policies make: only valid vectors are allowed.
				if want := body == v.Body; v.Expect == "valid" && d.Allow != want {
					t.Errorf("tampered body %v: allow %v, want %v", !want, d.Allow, want)
				}
				evalBoth(t, q, doc, c)
			}
		})
	}
}

// TestReferencePolicyReadsNoRequestObject: the reference workload's policy (signature,
// event header, source address, dedupe and rate-limit keys) reads all it needs from the
// capture, and decides as topdown does.
func TestReferencePolicyReadsNoRequestObject(t *testing.T) {
	ctx := context.Background()
	src, err := os.ReadFile("../../examples/bench/policies/reference.rego")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vectors.Load(t) {
		if v.Scheme() != "github" {
			continue
		}
		set, err := LoadModules(ctx, map[string]string{"reference.rego": string(src)}, nil,
			Options{Secrets: secretMap{"github": []byte(v.Key())}})
		if err != nil {
			t.Fatal(err)
		}
		q := prepareCompiled(t, set, "bench.reference")
		headers := map[string]string{"X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"}
		for k, val := range v.Headers {
			headers[k] = val
		}
		doc, c := vectorRequest(t, &v, v.Body, headers, false, false)
		cc := &countingCapture{Captured: c}
		d, err := q.EvalRequest(ctx, fastpath.WithRequest(doc, ast.NewTerm(decoyRequest)), cc, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cc.objects != 0 {
			t.Errorf("%s: the compiled evaluation built the request object %d times", v.Name, cc.objects)
		}
		// vectorRequest's requests come from 192.0.2.10, outside the policy's sources.
		if d.Allow || d.Dedupe == nil || d.Dedupe.Key != "d-1" || d.RateLimit == nil || d.RateLimit.Key != "192.0.2.10" {
			t.Errorf("%s: %+v, want denied (source) with dedupe d-1 and a rate limit on 192.0.2.10", v.Name, d)
		}
		evalBoth(t, q, doc, c)
	}
}

// TestCapturedPathAndURI: input.request.path is the canonical path the gateway routed on
// (Meta.Path, or the request's own made canonical) and input.request.uri the target as
// received; the compiled evaluator reading them from the capture, the compiled evaluator on
// the document and topdown decide alike (evalBoth), for targets whose two forms disagree.
func TestCapturedPathAndURI(t *testing.T) {
	ctx := context.Background()
	mod := `package t.paths

default allow := false

allow if startswith(input.request.path, "/app/")

deny contains "admin area" if startswith(input.request.path, "/app/admin")

deny contains "dots in the target" if contains(input.request.uri, "..")

labels := {"path": input.request.path, "uri": input.request.uri}
`
	set, err := LoadModules(ctx, map[string]string{"p.rego": mod}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	q := prepareCompiled(t, set, "t.paths")
	for _, c := range []struct {
		target, path string
		deny         []string
	}{
		{"/app/x", "/app/x", nil},
		{"/app/x/../admin?q=1", "/app/admin", []string{"admin area", "dots in the target"}},
		{"/app/%61dmin", "/app/admin", []string{"admin area"}},
		{"/app//admin/", "/app/admin/", []string{"admin area"}},
		{"/app/./x?next=/../y", "/app/x", []string{"dots in the target"}},
		{"/hooks/%2e%2e/app/x", "/app/x", nil},
	} {
		for _, routed := range []bool{true, false} {
			req := fasthttp.AcquireRequest()
			req.Header.SetMethod("POST")
			req.SetRequestURI(c.target)
			req.Header.SetHost("gw")
			meta := &input.Meta{ID: "t", Scheme: "http", RemoteIP: "192.0.2.1", ReceivedAt: time.Unix(1, 0), RouteName: "app", RoutePath: "/app/"}
			if routed {
				meta.Path = urlpathOf(t, c.target)
			}
			var b input.Builder
			captured := b.Capture(req, meta)
			fasthttp.ReleaseRequest(req)
			d, err := evalBoth(t, q, input.Document(captured.Object(), meta, nil), captured)
			if err != nil {
				t.Fatal(err)
			}
			if d.Labels["path"] != c.path || d.Labels["uri"] != c.target || !slices.Equal(d.Deny, c.deny) {
				t.Errorf("%q (routed %v): path %v, uri %v, deny %v; want %q, %q, %v", c.target, routed, d.Labels["path"], d.Labels["uri"], d.Deny, c.path, c.target, c.deny)
			}
		}
	}
}

// urlpathOf returns the canonical path of target as the gateway computes it.
func urlpathOf(t *testing.T, target string) string {
	raw, _, _ := strings.Cut(target, "?")
	r := urlpath.Clean(nil, []byte(raw))
	if r.Class == urlpath.Invalid {
		t.Fatalf("%q has no canonical path", target)
	}
	return string(r.Path)
}
