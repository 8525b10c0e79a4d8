package policy_test

import (
	"bytes"
	"context"
	"github.com/hookwall/hookwall/engine/internal/vectors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/input"
	"github.com/hookwall/hookwall/engine/policy"
)

// The provider library, the ready route policies and their real-signature tests. The vector
// tests sit in a hidden directory, which policy loaders skip: they need the secrets and clock
// this file supplies, so `hookwall test` on a user's policy dir must not pick them up.
const (
	provLibDir    = "../../policies/hookwall/lib/providers"
	provRouteDir  = "../../policies/routes/providers"
	provVectorDir = "../../policies/routes/providers/.vectors"
)

// provSchemes are the provider packages: data.hookwall.lib.providers.<p> and data.routes.providers.<p>.
var provSchemes = []string{"github", "stripe", "slack", "shopify", "twilio", "standard", "svix", "square",
	"paddle", "pagerduty", "sendgrid", "discord", "zoom", "linear"}

// provSecretVectors maps each secret name the Rego tests use to the vector whose secret (or
// public key) it holds. A ready policy reads the secret named after its provider.
var provSecretVectors = map[string]string{
	"github":         "github-docs-hello-world",
	"github_octokit": "octokit-webhooks-methods-foo-bar",
	"github_wrong":   "github-docs-wrong-secret",
	"stripe":         "stripe-dotnet-event_test_signature",
	"slack":          "slack-docs-slash-command",
	"shopify":        "go-shopify-my-secret-message",
	"twilio":         "twilio-python-form",
	"standard":       "standard-webhooks-sign-vector",
	"svix":           "svix-headers-sign-vector",
	"square":         "square-sdk-test-notification",
	"square_escaped": "square-sdk-escaped-chars",
	"square_wrong":   "square-sdk-wrong-key",
	"paddle":         "paddle-sdk-valid",
	"pagerduty":      "go-pagerduty-valid",
	"sendgrid":       "sendgrid-eventwebhook-single",
	"discord":        "discord-ed25519-rfc8032-key",
	"zoom":           "zoom-self-generated",
	"linear":         "linear-self-generated",
}

type provVector = vectors.Vector

func loadProvVectors(t testing.TB) []provVector { return vectors.Load(t) }

// provSecrets is a SecretSource that counts lookups: the verify builtin looks each secret name
// up once per call, so the count is the number of signature checks an evaluation made.
type provSecrets struct {
	m     map[string][]byte
	reads atomic.Int64
}

func (s *provSecrets) Get(name string) ([]byte, bool) {
	s.reads.Add(1)
	v, ok := s.m[name]
	return v, ok
}

func vectorSecrets(t testing.TB, vs []provVector) *provSecrets {
	t.Helper()
	byName := map[string]*provVector{}
	for i := range vs {
		byName[vs[i].Name] = &vs[i]
	}
	s := &provSecrets{m: map[string][]byte{}}
	for name, vec := range provSecretVectors {
		v, ok := byName[vec]
		if !ok || v.Key() == "" {
			t.Fatalf("secret %q: vector %q not found or without a key", name, vec)
		}
		s.m[name] = []byte(v.Key())
	}
	return s
}

// provFiles returns the .rego files under dir (not recursive), split into policies and tests.
func provFiles(t testing.TB, dir string) (mods, tests []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		switch name := e.Name(); {
		case e.IsDir() || !strings.HasSuffix(name, ".rego"):
		case strings.HasSuffix(name, "_test.rego"):
			tests = append(tests, filepath.Join(dir, name))
		default:
			mods = append(mods, filepath.Join(dir, name))
		}
	}
	return mods, tests
}

func provSources(t testing.TB) map[string]string {
	t.Helper()
	src := map[string]string{}
	for _, dir := range []string{provLibDir, provRouteDir} {
		mods, _ := provFiles(t, dir)
		for _, p := range mods {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			src[p] = string(b)
		}
	}
	return src
}

// TestProviderFilesComplete: every provider has a library package, a ready route policy, and
// a _test.rego beside each; the real-signature tests cover at least the brief's four.
func TestProviderFilesComplete(t *testing.T) {
	for _, p := range provSchemes {
		for _, f := range []string{
			filepath.Join(provLibDir, p+".rego"), filepath.Join(provLibDir, p+"_test.rego"),
			filepath.Join(provRouteDir, p+".rego"), filepath.Join(provRouteDir, p+"_test.rego"),
			filepath.Join(provVectorDir, p+"_test.rego"),
			filepath.Join("../../docs/providers", p+".md"),
		} {
			if _, err := os.Stat(f); err != nil {
				t.Errorf("provider %s: %v", p, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(provLibDir, "providers_test.rego")); err != nil {
		t.Error(err)
	}
}

// TestProviderVectorTestsCiteEveryVector: each published vector is exercised by a Rego test in
// .vectors/, which names it in a "# Vector <name>" comment; and every name cited exists.
func TestProviderVectorTestsCiteEveryVector(t *testing.T) {
	_, tests := provFiles(t, provVectorDir)
	cited := map[string]bool{}
	for _, p := range tests {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "# Vector "); ok {
				name, _, _ := strings.Cut(rest, " ")
				cited[name] = true
			}
		}
	}
	known := map[string]bool{}
	for _, v := range loadProvVectors(t) {
		known[v.Name] = true
		if !cited[v.Name] {
			t.Errorf("vector %s has no Rego test in %s", v.Name, provVectorDir)
		}
	}
	for name := range cited {
		if !known[name] {
			t.Errorf("a Rego test cites vector %q, which is not in %s", name, vectors.Path())
		}
	}
}

// TestProviderPoliciesFormatted: the files are `opa fmt` clean.
func TestProviderPoliciesFormatted(t *testing.T) {
	var all []string
	for _, dir := range []string{provLibDir, provRouteDir, provVectorDir} {
		mods, tests := provFiles(t, dir)
		all = append(append(all, mods...), tests...)
	}
	for _, p := range all {
		src, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out, err := format.SourceWithOpts(p, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if !bytes.Equal(out, src) {
			t.Errorf("%s is not opa-fmt formatted; formatted:\n%s", p, out)
		}
	}
}

// TestProviderPoliciesCompile compiles the library and the ready policies the way the gateway
// does (strict, unsafe builtins off, without any secret: names are resolved per evaluation),
// prepares every route package, and checks that none makes the gateway parse bodies as JSON
// for every route (input.request.json is global: one reference turns parsing on everywhere).
func TestProviderPoliciesCompile(t *testing.T) {
	ctx := context.Background()
	set, err := policy.LoadModules(ctx, provSources(t), nil, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range provSchemes {
		q, err := set.Prepare(ctx, "routes.providers."+p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if q.NeedsJSON() {
			t.Errorf("routes.providers.%s reads input.request.json: every route would parse every body", p)
		}
		for _, rule := range []string{"allow", "deny", "status", "dedupe", "rate_limit", "labels"} {
			if !slices.Contains(set.Rules("routes.providers."+p), rule) {
				t.Errorf("routes.providers.%s has no %s rule", p, rule)
			}
		}
		for _, fn := range []string{"verify", "verify_with", "verified", "reasons", "allow", "status", "dedupe_key", "dedupe_ttl", "dedupe", "methods", "labels", "rate_limit"} {
			if !slices.Contains(set.Rules("hookwall.lib.providers."+p), fn) {
				t.Errorf("hookwall.lib.providers.%s has no %s", p, fn)
			}
		}
	}
}

// ruleNumber returns the value of `name := <number>` in m, if any.
func ruleNumber(m *ast.Module, name string) (int64, bool) {
	for _, r := range m.Rules {
		if r.Head.Name.String() != name || r.Head.Value == nil {
			continue
		}
		if n, ok := r.Head.Value.Value.(ast.Number); ok {
			return n.Int64()
		}
	}
	return 0, false
}

// TestProviderRegoTests runs every provider _test.rego (library, ready policies, real vectors)
// with OPA's runner and the production builtins, given the vectors' secrets. Each file runs on
// its own, with the verify clock pinned to its `clock` rule when it has one (the vectors' "now";
// a file's vectors share one), so a stale vector is stale at the vector's own time.
func TestProviderRegoTests(t *testing.T) {
	ctx := context.Background()
	vs := loadProvVectors(t)
	secrets := vectorSecrets(t, vs)
	nows := map[int64]bool{}
	for _, v := range vs {
		nows[v.Now] = true
	}
	policies := map[string]*ast.Module{}
	for name, src := range provSources(t) {
		m, err := ast.ParseModuleWithOpts(name, src, ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatal(err)
		}
		policies[name] = m
	}
	var files []string
	for _, dir := range []string{provLibDir, provRouteDir, provVectorDir} {
		_, tests := provFiles(t, dir)
		files = append(files, tests...)
	}
	sort.Strings(files)
	if len(files) < 2*len(provSchemes)+4 {
		t.Fatalf("found %d test files", len(files))
	}
	total := 0
	for _, file := range files {
		t.Run(strings.TrimPrefix(file, "../../"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			m, err := ast.ParseModuleWithOpts(file, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatal(err)
			}
			clock := time.Unix(1700000000, 0)
			if n, ok := ruleNumber(m, "clock"); ok {
				if !nows[n] {
					t.Fatalf("clock %d is no vector's now", n)
				}
				clock = time.Unix(n, 0)
			} else if strings.HasPrefix(file, provVectorDir) {
				t.Fatal("a vector test file must pin its clock with `clock := <vector now>`")
			}
			mods := map[string]*ast.Module{file: m}
			for k, v := range policies {
				mods[k] = v
			}
			builtins := policy.TesterBuiltins(secrets, func() time.Time { return clock })
			caps := ast.CapabilitiesForThisVersion()
			caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool {
				return slices.Contains(policy.UnsafeBuiltins(), b.Name)
			})
			for _, b := range builtins {
				caps.Builtins = append(caps.Builtins, b.Decl)
			}
			store := inmem.New()
			comp := ast.NewCompiler().WithCapabilities(caps).WithStrict(true).WithDefaultRegoVersion(ast.RegoV1)
			r := tester.NewRunner().SetCompiler(comp).SetStore(store).SetModules(mods).
				AddCustomBuiltins(builtins).RaiseBuiltinErrors(true).SetTimeout(time.Minute)
			n := 0
			err = storage.Txn(ctx, store, storage.TransactionParams{}, func(txn storage.Transaction) error {
				ch, err := r.RunTests(ctx, txn)
				if err != nil {
					return err
				}
				for res := range ch {
					if res.Location == nil || res.Location.File != file {
						t.Errorf("a test from another file ran: %v %s", res.Location, res.Name)
						continue
					}
					n++
					switch {
					case res.Error != nil:
						t.Errorf("%s: %s: error: %v", res.Location, res.Name, res.Error)
					case res.Fail:
						t.Errorf("%s: %s: FAIL", res.Location, res.Name)
					case res.Skip:
						t.Errorf("%s: %s: skipped", res.Location, res.Name)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatal("no test ran")
			}
			total += n
		})
	}
	t.Logf("%d Rego tests in %d files", total, len(files))
}

// provInput builds the input document for a vector with the gateway's own input builder, from a
// real fasthttp request. URL-signed vectors arrive at the vector's path and query on an
// internal host, as behind a proxy; the public URL is policy data.
func provInput(t testing.TB, v *provVector, parseJSON bool) ast.Value {
	t.Helper()
	uri := "/hooks/" + v.Scheme()
	if v.URL != "" {
		_, uri = splitVectorURL(t, v.URL)
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod("POST")
	req.SetRequestURI(uri)
	req.Header.SetHost("gateway.internal:8080")
	for k, val := range v.Headers {
		req.Header.Set(k, val)
	}
	req.SetBodyString(v.Body)
	meta := &input.Meta{ID: "t", Scheme: "http", RemoteIP: "192.0.2.10", ReceivedAt: time.Unix(v.Now, 0),
		RouteName: v.Scheme(), RoutePath: "/hooks/" + v.Scheme(), ParseJSON: parseJSON}
	return input.Document(input.Request(req, meta), meta, nil)
}

// splitVectorURL splits a vector's full URL into the public base and the request URI.
func splitVectorURL(t testing.TB, full string) (base, uri string) {
	t.Helper()
	scheme, rest, ok := strings.Cut(full, "://")
	if !ok {
		t.Fatalf("vector url %q has no scheme", full)
	}
	i := strings.IndexAny(rest, "/?")
	if i < 0 {
		return full, "/"
	}
	return scheme + "://" + rest[:i], rest[i:]
}

// TestProviderVectorDecisions evaluates every published vector through its ready route policy,
// compiled for serving, with the vector's secret under the provider's name and the clock at
// the vector's time: valid → allowed with no reason; invalid → denied with 401 and a
// "signature: " reason. Each evaluation checks the signature exactly once.
func TestProviderVectorDecisions(t *testing.T) {
	ctx := context.Background()
	src := provSources(t)
	vs := loadProvVectors(t)
	routes := map[string]bool{}
	for i := range vs {
		v := &vs[i]
		routes[v.Scheme()] = true
		t.Run(v.Name, func(t *testing.T) {
			secrets := &provSecrets{m: map[string][]byte{v.Scheme(): []byte(v.Key())}}
			var data map[string]any
			if v.URL != "" {
				base, _ := splitVectorURL(t, v.URL)
				data = map[string]any{"hookwall": map[string]any{"config": map[string]any{"public_url": base}}}
			}
			now := time.Unix(v.Now, 0)
			set, err := policy.LoadModules(ctx, src, data, policy.Options{Secrets: secrets, Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			q, err := set.Prepare(ctx, "routes.providers."+v.Scheme())
			if err != nil {
				t.Fatal(err)
			}
			secrets.reads.Store(0)
			d, err := q.Eval(ctx, provInput(t, v, q.NeedsJSON()), nil)
			if err != nil {
				t.Fatal(err)
			}
			if n := secrets.reads.Load(); n != 1 {
				t.Errorf("the signature was checked %d times in one evaluation, want 1", n)
			}
			if d.RateLimit == nil || d.RateLimit.Key != v.Scheme()+":192.0.2.10" {
				t.Errorf("rate_limit = %+v", d.RateLimit)
			}
			switch v.Expect {
			case "valid":
				if !d.Allow || d.Denied() {
					t.Fatalf("valid vector denied: allow=%v deny=%v status=%d", d.Allow, d.Deny, d.Status)
				}
			case "invalid":
				if d.Allow || d.Status != 401 || len(d.Deny) != 1 || !strings.HasPrefix(d.Deny[0], "signature: ") {
					t.Fatalf("invalid vector: allow=%v deny=%v status=%d, want denied 401 with a signature reason", d.Allow, d.Deny, d.Status)
				}
				if d.Dedupe != nil || len(d.Labels) != 0 {
					t.Fatalf("a forged request got dedupe %+v labels %v", d.Dedupe, d.Labels)
				}
			default:
				t.Fatalf("unknown expect %q", v.Expect)
			}
		})
	}
	for _, p := range provSchemes {
		if !routes[p] {
			t.Errorf("no vector exercises routes.providers.%s", p)
		}
	}
}

// TestProviderMissingSecretFailsClosed: a ready policy whose secret is not configured is an
// evaluation error (the gateway answers 500), never an allow.
func TestProviderMissingSecretFailsClosed(t *testing.T) {
	ctx := context.Background()
	set, err := policy.LoadModules(ctx, provSources(t), nil, policy.Options{Secrets: &provSecrets{m: map[string][]byte{}}})
	if err != nil {
		t.Fatal(err)
	}
	v := loadProvVectors(t)[0]
	for _, p := range provSchemes {
		q, err := set.Prepare(ctx, "routes.providers."+p)
		if err != nil {
			t.Fatal(err)
		}
		d, err := q.Eval(ctx, provInput(t, &v, false), nil)
		if err == nil || !strings.Contains(err.Error(), `no secret named "`+p+`"`) {
			t.Errorf("routes.providers.%s without its secret: decision %+v, err %v; want an evaluation error", p, d, err)
		}
	}
}

// BenchmarkProviderPolicy evaluates ready policies on a valid vector: the whole decision (one
// signature check, dedupe key, labels, rate limit) as the gateway runs it.
func BenchmarkProviderPolicy(b *testing.B) {
	ctx := context.Background()
	vs := loadProvVectors(b)
	for _, name := range []string{"github-docs-hello-world", "stripe-dotnet-event_test_signature", "standard-webhooks-sign-vector", "slack-docs-slash-command"} {
		i := slices.IndexFunc(vs, func(v provVector) bool { return v.Name == name })
		if i < 0 {
			b.Fatalf("vector %s not found", name)
		}
		v := &vs[i]
		b.Run(v.Scheme(), func(b *testing.B) {
			now := time.Unix(v.Now, 0)
			set, err := policy.LoadModules(ctx, provSources(b), nil, policy.Options{
				Secrets: &provSecrets{m: map[string][]byte{v.Scheme(): []byte(v.Key())}}, Now: func() time.Time { return now }})
			if err != nil {
				b.Fatal(err)
			}
			q, err := set.Prepare(ctx, "routes.providers."+v.Scheme())
			if err != nil {
				b.Fatal(err)
			}
			in := provInput(b, v, q.NeedsJSON())
			for _, c := range []struct {
				name string
				o    *policy.EvalParams
			}{{"compiled", nil}, {"opa", &policy.EvalParams{OPA: true}}} {
				b.Run(c.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						d, err := q.Eval(ctx, in, c.o)
						if err != nil || !d.Allow {
							b.Fatalf("allow=%v err=%v", d.Allow, err)
						}
					}
				})
			}
		})
	}
}
