package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/input"
	"github.com/hookwall/hookwall/engine/internal/vectors"
)

// timestampSchemes are the schemes whose signature covers a timestamp checked against the
// clock (engine/webhook: 5 minutes, Paddle 5 seconds); the others sign no time.
var timestampSchemes = map[string]bool{
	"stripe": true, "slack": true, "standard": true, "svix": true, "paddle": true,
	"sendgrid": true, "discord": true, "zoom": true, "linear": true,
}

// vectorRequest builds the input document for a vector with the gateway's input builder, from
// a real fasthttp request. A URL-signed vector arrives at its URL's host and scheme (so the
// request's own origin is the signed one), unless internal is set: then at an internal host,
// as behind a proxy, the public URL being policy data. It returns the document and the
// request as the gateway captures it, for EvalRequest.
func vectorRequest(t testing.TB, v *vectors.Vector, body string, headers map[string]string, internal, parseJSON bool) (ast.Value, *input.Captured) {
	t.Helper()
	scheme, host, uri := "http", "gateway.internal:8080", "/hooks/"+v.Scheme()
	if v.URL != "" {
		s, rest, ok := strings.Cut(v.URL, "://")
		if !ok {
			t.Fatalf("vector url %q has no scheme", v.URL)
		}
		h, path := rest, "/"
		if i := strings.IndexAny(rest, "/?"); i >= 0 {
			h, path = rest[:i], rest[i:]
		}
		uri = path
		if !internal {
			scheme, host = s, h
		}
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod("POST")
	req.SetRequestURI(uri)
	req.Header.SetHost(host)
	for k, val := range headers {
		req.Header.Set(k, val)
	}
	req.SetBodyString(body)
	meta := &input.Meta{ID: "t", Scheme: scheme, RemoteIP: "192.0.2.10", ReceivedAt: time.Unix(v.Now, 0),
		RouteName: v.Scheme(), RoutePath: "/hooks/" + v.Scheme(), ParseJSON: parseJSON}
	var b input.Builder
	c := b.Capture(req, meta)
	return input.Document(c.Object(), meta, nil), c
}

// vectorBase returns a URL-signed vector's public origin.
func vectorBase(v *vectors.Vector) string {
	s, rest, _ := strings.Cut(v.URL, "://")
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	return s + "://" + rest
}

// TestFastPathProviderVectors evaluates every published vector with its provider's ready
// policy (../../policies/routes/providers) on the fast path and with topdown, which must decide the
// same, errors included; the fast path must evaluate every ready policy, check the signature
// once per evaluation, allow the valid vectors and deny the invalid ones. Each vector is then
// tampered with (body changed, signature headers removed, clock an hour later) and compared
// again: a tampered or unsigned request is denied; an hour later, a valid request is denied
// by the schemes that sign a timestamp and still allowed by the others.
func TestFastPathProviderVectors(t *testing.T) {
	ctx := context.Background()
	vs := vectors.Load(t)
	secrets := &countingSecrets{secretMap: secretMap{}}
	var clock time.Time
	set, err := Load(ctx, "../../policies", Options{Secrets: secrets, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	queries := map[string]*Query{}
	covered := map[string]bool{}
	for i := range vs {
		v := &vs[i]
		pkg := "routes.providers." + v.Scheme()
		q := queries[pkg]
		if q == nil {
			q = prepareCompiled(t, set, pkg)
			queries[pkg] = q
		}
		covered[v.Scheme()] = true
		t.Run(v.Name, func(t *testing.T) {
			secrets.secretMap = secretMap{v.Scheme(): []byte(v.Key())}
			eval := func(what string, body string, headers map[string]string, now time.Time) Decision {
				t.Helper()
				clock = now
				secrets.reads = 0
				in, c := vectorRequest(t, v, body, headers, false, q.NeedsJSON())
				d, err := evalBoth(t, q, in, c)
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				evals := 3 // evalBoth's; a fourth without the document when the policy needs none
				if !q.NeedsDocument() {
					evals = 4
				}
				if secrets.reads != evals {
					t.Errorf("%s: the secret was read %d times by %d evaluations, want once each", what, secrets.reads, evals)
				}
				return d
			}
			denied := func(what string, d Decision) {
				t.Helper()
				if !d.Denied() || d.Status != 401 || len(d.Deny) == 0 || !strings.HasPrefix(d.Deny[0], "signature: ") {
					t.Errorf("%s: %+v, want denied 401 for the signature", what, d)
				}
				if d.Dedupe != nil || len(d.Labels) != 0 {
					t.Errorf("%s: an unverified request got dedupe %+v labels %v", what, d.Dedupe, d.Labels)
				}
			}
			now := time.Unix(v.Now, 0)
			d := eval("as published", v.Body, v.Headers, now)
			switch v.Expect {
			case "valid":
				if !d.Allow || d.Denied() || d.RateLimit == nil {
					t.Errorf("valid vector: %+v, want allowed with a rate limit", d)
				}
			case "invalid":
				denied("invalid vector", d)
			default:
				t.Fatalf("unknown expect %q", v.Expect)
			}

			denied("tampered body", eval("tampered body", v.Body+"x", v.Headers, now))

			unsigned := map[string]string{}
			for k, val := range v.Headers {
				if lk := strings.ToLower(k); !strings.Contains(lk, "signature") && !strings.Contains(lk, "hmac") {
					unsigned[k] = val
				}
			}
			if len(unsigned) == len(v.Headers) {
				t.Fatalf("no signature header among %v", v.Headers)
			}
			denied("no signature header", eval("no signature header", v.Body, unsigned, now))

			late := eval("an hour later", v.Body, v.Headers, now.Add(time.Hour))
			switch {
			case v.Expect == "invalid" || timestampSchemes[v.Scheme()]:
				denied("an hour later", late)
			case late.Denied():
				t.Errorf("an hour later: %+v; %s signs no timestamp, the request must stay allowed", late, v.Scheme())
			}
		})
	}
	for _, p := range []string{"github", "stripe", "slack", "shopify", "twilio", "standard", "svix", "square",
		"paddle", "pagerduty", "sendgrid", "discord", "zoom", "linear"} {
		if !covered[p] {
			t.Errorf("no vector exercises routes.providers.%s", p)
		}
	}
}

// TestFastPathProviderPublicURL: URL-signed vectors arriving at an internal host verify with
// the public URL from policy data (data.hookwall.config.public_url), read by the fast path
// from the base document, and fail without it; both evaluators agree.
func TestFastPathProviderPublicURL(t *testing.T) {
	ctx := context.Background()
	src := map[string]string{}
	for _, dir := range []string{"../../policies/hookwall/lib/providers", "../../policies/routes/providers"} {
		for name, text := range fastpathRegoFiles(t, dir) {
			src[name] = text
		}
	}
	n := 0
	for _, v := range vectors.Load(t) {
		if v.URL == "" {
			continue
		}
		n++
		t.Run(v.Name, func(t *testing.T) {
			now := time.Unix(v.Now, 0)
			for _, public := range []bool{true, false} {
				var data map[string]any
				if public {
					data = map[string]any{"hookwall": map[string]any{"config": map[string]any{"public_url": vectorBase(&v)}}}
				}
				set, err := LoadModules(ctx, src, data, Options{Secrets: secretMap{v.Scheme(): []byte(v.Key())}, Now: func() time.Time { return now }})
				if err != nil {
					t.Fatal(err)
				}
				q := prepareCompiled(t, set, "routes.providers."+v.Scheme())
				in, c := vectorRequest(t, &v, v.Body, v.Headers, true, q.NeedsJSON())
				d, err := evalBoth(t, q, in, c)
				if err != nil {
					t.Fatal(err)
				}
				if want := public && v.Expect == "valid"; d.Denied() == want {
					t.Errorf("public URL in data %v: %+v, want allowed %v", public, d, want)
				}
			}
		})
	}
	if n == 0 {
		t.Fatal("no URL-signed vector")
	}
}

// fastpathRegoFiles reads the policy (not test) .rego files of dir, by path.
func fastpathRegoFiles(t testing.TB, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".rego") || strings.HasSuffix(name, "_test.rego") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Join(dir, name)] = string(b)
	}
	return out
}

// TestFastPathConcurrent evaluates every ready policy from several goroutines at once, as the
// gateway does (a Program is shared; its runs are pooled): every decision must equal the one
// evaluated alone. Run it with -race.
func TestFastPathConcurrent(t *testing.T) {
	vs := vectors.Load(t)
	secrets := secretMap{}
	for _, v := range vs {
		if v.Expect == "valid" && v.URL == "" {
			secrets[v.Scheme()] = []byte(v.Key())
		}
	}
	var clock time.Time
	set, err := Load(context.Background(), "../../policies", Options{Secrets: secrets, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	type job struct {
		q    *Query
		in   ast.Value
		want Decision
	}
	var jobs []job
	clock = time.Unix(vs[0].Now, 0)
	for i := range vs {
		v := &vs[i]
		if string(secrets[v.Scheme()]) != v.Key() || v.Now != vs[0].Now && timestampSchemes[v.Scheme()] {
			continue // one clock for all: only vectors it does not make stale
		}
		q := prepareCompiled(t, set, "routes.providers."+v.Scheme())
		for _, body := range []string{v.Body, v.Body + "x"} {
			in, _ := vectorRequest(t, v, body, v.Headers, false, q.NeedsJSON())
			d, err := q.Eval(context.Background(), in, nil)
			if err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, job{q, in, d})
		}
	}
	if len(jobs) < 4 {
		t.Fatalf("%d jobs", len(jobs))
	}
	done := make(chan error)
	for g := range 8 {
		go func() {
			for n := range 40 {
				j := jobs[(g+n)%len(jobs)]
				d, err := j.q.Eval(context.Background(), j.in, nil)
				if err != nil {
					done <- err
					return
				}
				if d.Allow != j.want.Allow || d.Status != j.want.Status || len(d.Deny) != len(j.want.Deny) || len(d.Labels) != len(j.want.Labels) {
					done <- fmt.Errorf("%s: %+v, alone %+v", j.q.pkg, d, j.want)
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
