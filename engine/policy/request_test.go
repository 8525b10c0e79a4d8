package policy

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/hookwall/hookwall/engine/input"
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
