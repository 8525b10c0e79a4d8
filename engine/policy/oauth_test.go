package policy_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/hookwall/hookwall/engine/oauth"
	"github.com/hookwall/hookwall/engine/oauth/oauthtest"
	"github.com/hookwall/hookwall/engine/policy"
)

const oauthPolicy = `package routes.api

default allow := false

token := hookwall.oauth.verify(input.request.headers.authorization, input.request.headers["x-issuer"])

allow if {
	token.valid
	token.claims.scope == "hooks:write"
}

deny contains token.reason if not token.valid

labels["sender"] := token.claims.sub if token.valid
`

func authInput(auth, issuer string) ast.Value {
	h := ast.NewObject(ast.Item(ast.StringTerm("x-issuer"), ast.StringTerm(issuer)))
	if auth != "" {
		h.Insert(ast.StringTerm("authorization"), ast.StringTerm(auth))
	}
	req := ast.NewObject(ast.Item(ast.StringTerm("headers"), ast.NewTerm(h)))
	return ast.NewObject(ast.Item(ast.StringTerm("request"), ast.NewTerm(req)))
}

// oauthSet starts an issuer "idp" of a loopback provider that publishes k's key.
func oauthSet(t testing.TB, k oauthtest.Signer) (*oauth.Set, *oauthtest.IDP) {
	p := oauthtest.NewIDP(t, k)
	set, err := oauth.NewSet([]oauth.Config{{Name: "idp", Issuer: p.Issuer(), Audiences: []string{"api"}}}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	deadline := time.Now().Add(5 * time.Second)
	for set.Issuer("idp").Stats().Keys == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return set, p
}

// TestOAuthBuiltin: the compiled evaluator and topdown decide alike on real tokens, and an
// issuer that is not configured fails the evaluation (500) on both.
func TestOAuthBuiltin(t *testing.T) {
	k := oauthtest.RSA(t, 0, "k1")
	set, p := oauthSet(t, k)
	ctx := context.Background()
	ps, err := policy.LoadModules(ctx, map[string]string{"p.rego": oauthPolicy}, nil, policy.Options{OAuth: set})
	if err != nil {
		t.Fatal(err)
	}
	q, err := ps.Prepare(ctx, "routes.api")
	if err != nil {
		t.Fatal(err)
	}
	if name, why := q.Evaluator(); name != "compiled" {
		t.Fatalf("evaluator %s (%s), want compiled", name, why)
	}
	now := time.Now().Unix()
	tok := func(scope string) string {
		return oauthtest.Mint(t, k, map[string]any{"iss": p.Issuer(), "aud": "api", "sub": "svc-1", "scope": scope, "exp": now + 60})
	}
	for _, c := range []struct {
		name, auth, issuer string
		allow              bool
		deny, sender, err  string
	}{
		{"valid", "Bearer " + tok("hooks:write"), "idp", true, "", "svc-1", ""},
		{"other scope", "Bearer " + tok("read"), "idp", false, "", "svc-1", ""},
		{"bad form", "Basic " + tok("hooks:write"), "idp", false, oauth.ReasonNotBearer, "", ""},
		{"unknown issuer", "Bearer " + tok("hooks:write"), "nope", false, "", "", `no [[oauth]] issuer named "nope"`},
	} {
		for _, opa := range []bool{false, true} {
			d, err := q.Eval(ctx, authInput(c.auth, c.issuer), &policy.EvalParams{OPA: opa})
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), policy.OAuthName) {
					t.Errorf("%s (opa %v): err %v, want one with %q", c.name, opa, err, c.err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s (opa %v): %v", c.name, opa, err)
			}
			sender, _ := d.Labels["sender"].(string)
			deny := strings.Join(d.Deny, ",")
			if d.Allow != c.allow || deny != c.deny || sender != c.sender {
				t.Errorf("%s (opa %v): allow %v deny %q sender %q; want %v %q %q", c.name, opa, d.Allow, deny, sender, c.allow, c.deny, c.sender)
			}
		}
	}
	// A policy set without issuers fails closed too.
	bare, err := policy.LoadModules(ctx, map[string]string{"p.rego": oauthPolicy}, nil, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bq, _ := bare.Prepare(ctx, "routes.api")
	if _, err := bq.Eval(ctx, authInput("Bearer "+tok("hooks:write"), "idp"), nil); err == nil || !strings.Contains(err.Error(), "no [[oauth]] issuer") {
		t.Fatalf("without issuers: %v", err)
	}
}

// BenchmarkOAuthPolicy is a whole decision of a compiled policy that verifies an RS256
// token (signature, claims, the claims as a Rego object), to set beside BenchmarkVerify in
// engine/oauth.
func BenchmarkOAuthPolicy(b *testing.B) {
	k := oauthtest.RSA(b, 0, "k1")
	set, p := oauthSet(b, k)
	ctx := context.Background()
	ps, err := policy.LoadModules(ctx, map[string]string{"p.rego": oauthPolicy}, nil, policy.Options{OAuth: set})
	if err != nil {
		b.Fatal(err)
	}
	q, _ := ps.Prepare(ctx, "routes.api")
	tok := oauthtest.Mint(b, k, map[string]any{"iss": p.Issuer(), "aud": "api", "sub": "svc-1", "scope": "hooks:write", "exp": time.Now().Add(24 * time.Hour).Unix()})
	in := authInput("Bearer "+tok, "idp")
	b.ReportAllocs()
	for b.Loop() {
		d, err := q.Eval(ctx, in, nil)
		if err != nil || !d.Allow {
			b.Fatal(d, err)
		}
	}
}

// A served policy that names an issuer the config lacks, as a constant, is refused at load
// with its file and line; one the config has is accepted.
func TestOAuthIssuerCheckedAtLoad(t *testing.T) {
	set, _ := oauthSet(t, oauthtest.RSA(t, 0, "k1"))
	ctx := context.Background()
	src := func(issuer string) map[string]string {
		return map[string]string{"p.rego": "package routes.api\n\nallow if hookwall.oauth.verify(input.request.headers.authorization, \"" + issuer + "\").valid\n"}
	}
	for _, c := range []struct {
		issuer string
		oauth  policy.OAuthVerifier
		want   string
	}{
		{"idp", set, ""},
		{"nope", set, `p.rego:3: hookwall.oauth.verify: issuer: no [[oauth]] issuer named "nope"`},
		{"idp", nil, `no [[oauth]] issuer named "idp"`},
	} {
		ps, err := policy.LoadModules(ctx, src(c.issuer), nil, policy.Options{OAuth: c.oauth, Secrets: keySecrets{}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = ps.Prepare(ctx, "routes.api")
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("issuer %q: Prepare = %v, want %q", c.issuer, err, c.want)
		}
	}
}

// countingVerifier counts the calls that reach the issuers.
type countingVerifier struct {
	*oauth.Set
	n atomic.Int64
}

func (c *countingVerifier) Verify(ctx context.Context, issuer, token string, now time.Time) (oauth.Result, error) {
	c.n.Add(1)
	return c.Set.Verify(ctx, issuer, token, now)
}

// One verification per evaluation: the result bound to a rule is evaluated once by either
// evaluator, and topdown memoizes repeated calls with the same arguments as well.
func TestOAuthOncePerEvaluation(t *testing.T) {
	k := oauthtest.RSA(t, 0, "k1")
	set, p := oauthSet(t, k)
	cv := &countingVerifier{Set: set}
	ctx := context.Background()
	tok := oauthtest.Mint(t, k, map[string]any{"iss": p.Issuer(), "aud": "api", "sub": "svc-1", "scope": "hooks:write", "exp": time.Now().Unix() + 60})
	in := authInput("Bearer "+tok, "idp")
	for _, c := range []struct {
		name, src string
		opa       bool
	}{
		{"rule, compiled", oauthPolicy, false},
		{"rule, topdown", oauthPolicy, true},
		{"two call sites, topdown", `package routes.api

a := hookwall.oauth.verify(input.request.headers.authorization, "idp")

b := hookwall.oauth.verify(input.request.headers.authorization, "idp")

allow if {
	a.valid
	b.valid
}
`, true},
	} {
		ps, err := policy.LoadModules(ctx, map[string]string{"p.rego": c.src}, nil, policy.Options{OAuth: cv})
		if err != nil {
			t.Fatal(err)
		}
		q, err := ps.Prepare(ctx, "routes.api")
		if err != nil {
			t.Fatal(err)
		}
		cv.n.Store(0)
		d, err := q.Eval(ctx, in, &policy.EvalParams{OPA: c.opa})
		if err != nil || !d.Allow {
			t.Fatalf("%s: %+v %v", c.name, d, err)
		}
		if n := cv.n.Load(); n != 1 {
			t.Errorf("%s: %d verifications in one evaluation, want 1", c.name, n)
		}
	}
}
