package policy_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/hookwall/hookwall/engine/oauth/oauthtest"
	"github.com/hookwall/hookwall/engine/policy"
)

// TestBuiltinsNoteTheCredentialsTheyAreGiven: each builtin that is handed a credential
// (an API key, a bearer token, a generic hmac signature read from the header the policy
// names) notes it in the context's Sensitive, on both evaluators, whether or not it checks
// out; a named scheme, whose header the log's mask knows, notes nothing; and an evaluation
// without a Sensitive in its context is not hurt.
func TestBuiltinsNoteTheCredentialsTheyAreGiven(t *testing.T) {
	ctx := context.Background()
	k := oauthtest.RSA(t, 0, "k1")
	set, p := oauthSet(t, k)
	tok := oauthtest.Mint(t, k, map[string]any{"iss": p.Issuer(), "aud": "api", "sub": "svc-1", "exp": time.Now().Unix() + 60})
	const key = "k3y-0f-the-acme-c1ient"
	sum := sha256.Sum256([]byte(key))
	body := `{"event":"ping"}`
	m := hmac.New(sha256.New, []byte("hmac-secret"))
	m.Write([]byte(body))
	sig := hex.EncodeToString(m.Sum(nil))
	secrets := keySecrets{"keys": "sha256:" + hex.EncodeToString(sum[:]), "mac": "hmac-secret", "gh": "gh-secret"}

	headers := func(kv ...string) ast.Value {
		h := ast.NewObject()
		for i := 0; i < len(kv); i += 2 {
			h.Insert(ast.StringTerm(kv[i]), ast.StringTerm(kv[i+1]))
		}
		req := ast.NewObject(
			ast.Item(ast.StringTerm("method"), ast.StringTerm("POST")),
			ast.Item(ast.StringTerm("path"), ast.StringTerm("/h")),
			ast.Item(ast.StringTerm("headers"), ast.NewTerm(h)),
			ast.Item(ast.StringTerm("body"), ast.StringTerm(body)),
		)
		return ast.NewObject(ast.Item(ast.StringTerm("request"), ast.NewTerm(req)))
	}
	cases := []struct {
		name, src string
		in        ast.Value
		want      []string
	}{
		{"apikey, right", `package r
allow if hookwall.apikey.verify(input.request.headers["x-acme-client"], "keys")`, headers("x-acme-client", key), []string{key}},
		{"apikey, wrong", `package r
allow if hookwall.apikey.verify(input.request.headers["x-acme-client"], "keys")`, headers("x-acme-client", "guess"), []string{"guess"}},
		{"oauth", `package r
allow if hookwall.oauth.verify(input.request.headers["x-acme-jwt"], "idp").valid`, headers("x-acme-jwt", tok), []string{tok}},
		{"hmac, its header", `package r
allow if hookwall.webhook.verify("hmac", input.request, {"secret": "mac", "header": "X-Acme-Mac"}).valid`, headers("x-acme-mac", sig), []string{sig}},
		{"hmac, wrong", `package r
allow if hookwall.webhook.verify("hmac", input.request, {"secret": "mac", "header": "x-acme-mac"}).valid`, headers("x-acme-mac", "00"), []string{"00"}},
		{"github: a header the mask knows", `package r
allow if hookwall.webhook.verify("github", input.request, {"secret": "gh"}).valid`, headers("x-hub-signature-256", "sha256=00"), nil},
	}
	for _, c := range cases {
		for _, opa := range []bool{false, true} {
			ps, err := policy.LoadModules(ctx, map[string]string{"p.rego": c.src}, nil, policy.Options{OAuth: set, Secrets: secrets})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			q, err := ps.Prepare(ctx, "r")
			if err != nil {
				t.Fatal(err)
			}
			if !opa && !q.Compiled() {
				_, why := q.Evaluator()
				t.Fatalf("%s: not compiled: %s", c.name, why)
			}
			var s policy.Sensitive
			d, err := q.Eval(context.WithValue(ctx, policy.SensitiveKey{}, &s), c.in, &policy.EvalParams{OPA: opa})
			if err != nil {
				t.Fatalf("%s (opa %v): %v", c.name, opa, err)
			}
			if !slices.Equal(s.Values, c.want) {
				t.Errorf("%s (opa %v): noted %q, want %q", c.name, opa, s.Values, c.want)
			}
			d2, err := q.Eval(ctx, c.in, &policy.EvalParams{OPA: opa})
			if err != nil || d2.Allow != d.Allow {
				t.Errorf("%s (opa %v): without a Sensitive: %+v %v, with one: %+v", c.name, opa, d2, err, d)
			}
		}
	}
}
