package policy_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/hookwall/hookwall/engine/policy"
)

type keySecrets map[string]string

func (m keySecrets) Get(n string) ([]byte, bool) {
	v, ok := m[n]
	return []byte(v), ok
}

func keyHash(k string) string {
	sum := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(sum[:])
}

const apiKeyPolicy = `package routes.partner

default allow := false

allow if hookwall.apikey.verify(input.request.headers["x-api-key"], input.request.headers["x-secret"])
`

func keyInput(key, secret string) ast.Value {
	h := ast.NewObject(ast.Item(ast.StringTerm("x-secret"), ast.StringTerm(secret)))
	if key != "\x00absent" {
		h.Insert(ast.StringTerm("x-api-key"), ast.StringTerm(key))
	}
	req := ast.NewObject(ast.Item(ast.StringTerm("headers"), ast.NewTerm(h)))
	return ast.NewObject(ast.Item(ast.StringTerm("request"), ast.NewTerm(req)))
}

func TestAPIKeyVerify(t *testing.T) {
	const k1, k2 = "hk_live_7f3c9a1e5b2d4f6081a3c5e7092b4d6f", "hk_live_second_key_0123456789abcdef"
	secrets := keySecrets{
		// A list file: a comment, a blank line, upper-case hex, trailing spaces and CRLF.
		"partners": "# partner keys\n" + keyHash(k1) + "\r\n\n" + strings.ToUpper(keyHash(k2)[7:]) + "\n",
		"single":   keyHash(k1),
		"raw":      k1, // the key itself instead of its hash: a configuration error
		"short":    "sha256:abcd",
		"nothex":   "sha256:" + strings.Repeat("zz", 32),
		"empty":    "# nothing yet\n",
	}
	secrets["partners"] = strings.Replace(secrets["partners"], "\n"+strings.ToUpper(keyHash(k2)[7:]), "\nsha256:"+strings.ToUpper(keyHash(k2)[7:])+"  ", 1)
	ctx := context.Background()
	set, err := policy.LoadModules(ctx, map[string]string{"p.rego": apiKeyPolicy}, nil, policy.Options{Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	q, err := set.Prepare(ctx, "routes.partner")
	if err != nil {
		t.Fatal(err)
	}
	allowed := []struct {
		name, key, secret string
		want              bool
	}{
		{"first key of a list", k1, "partners", true},
		{"second key, upper-case hex", k2, "partners", true},
		{"single hash", k1, "single", true},
		{"key not in the list", k2, "single", false},
		{"wrong key", "hk_live_guess", "partners", false},
		{"key differing in the last byte", k1[:len(k1)-1] + "e", "partners", false},
		{"the hash itself as the key", keyHash(k1), "partners", false},
		{"empty key", "", "partners", false},
		{"no header", "\x00absent", "partners", false},
	}
	for _, tc := range allowed {
		t.Run(tc.name, func(t *testing.T) {
			d, err := q.Eval(ctx, keyInput(tc.key, tc.secret), nil)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allow != tc.want {
				t.Fatalf("allow = %v, want %v", d.Allow, tc.want)
			}
		})
	}
	failing := []struct{ secret, want string }{
		{"missing", `no secret named "missing"`},
		{"raw", `secret "raw": line 1: want "sha256:"`},
		{"short", `secret "short": line 1`},
		{"nothex", `secret "nothex": line 1: not hex`},
		{"empty", `secret "empty": no "sha256:<hex>" key hash`},
	}
	for _, tc := range failing {
		t.Run("error/"+tc.secret, func(t *testing.T) {
			_, err := q.Eval(ctx, keyInput(k1, tc.secret), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), k1) {
				t.Fatalf("error leaks a key: %v", err)
			}
		})
	}
}

// TestAPIKeyTesterBuiltin runs a Rego test through OPA's runner with TesterBuiltins: the
// production implementation, reading the secrets given to it.
func TestAPIKeyTesterBuiltin(t *testing.T) {
	const mod = `package t_test

test_good if hookwall.apikey.verify("k-1", "keys")

test_bad if not hookwall.apikey.verify("k-2", "keys")
`
	ctx := context.Background()
	parsed, err := ast.ParseModuleWithOpts("t_test.rego", mod, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	store := inmem.New()
	r := tester.NewRunner().SetStore(store).
		SetModules(map[string]*ast.Module{"t_test.rego": parsed}).
		AddCustomBuiltins(policy.TesterBuiltins(keySecrets{"keys": keyHash("k-1")}, nil)).
		RaiseBuiltinErrors(true)
	n := 0
	err = storage.Txn(ctx, store, storage.TransactionParams{}, func(txn storage.Transaction) error {
		ch, err := r.RunTests(ctx, txn)
		if err != nil {
			return err
		}
		for res := range ch {
			n++
			if res.Fail || res.Error != nil {
				t.Errorf("%s: fail=%v err=%v", res.Name, res.Fail, res.Error)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("ran %d tests, want 2", n)
	}
}

// BenchmarkAPIKeyPolicy evaluates a route policy that checks an API key against 1 or 101
// stored hashes, beside the same policy comparing the header with a constant (the cost of the
// evaluation itself).
func BenchmarkAPIKeyPolicy(b *testing.B) {
	ctx := context.Background()
	var list strings.Builder
	for i := range 100 {
		list.WriteString(keyHash("key-" + strings.Repeat("x", i)))
		list.WriteByte('\n')
	}
	list.WriteString(keyHash("the-key"))
	secrets := keySecrets{"keys": list.String(), "one": keyHash("the-key")}
	const plain = `package routes.partner

default allow := false

allow if input.request.headers["x-api-key"] == "the-key"
`
	for _, bc := range []struct{ name, policy, secret string }{
		{"hashes=101", apiKeyPolicy, "keys"},
		{"hashes=1", apiKeyPolicy, "one"},
		{"baseline-no-builtin", plain, "one"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			set, err := policy.LoadModules(ctx, map[string]string{"p.rego": bc.policy}, nil, policy.Options{Secrets: secrets})
			if err != nil {
				b.Fatal(err)
			}
			q, err := set.Prepare(ctx, "routes.partner")
			if err != nil {
				b.Fatal(err)
			}
			in := keyInput("the-key", bc.secret)
			b.ReportAllocs()
			for b.Loop() {
				d, err := q.Eval(ctx, in, nil)
				if err != nil || !d.Allow {
					b.Fatalf("allow=%v err=%v", d.Allow, err)
				}
			}
		})
	}
}
