package policy

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/types"
)

// APIKeyName is the Rego name of the API-key builtin:
//
//	hookwall.apikey.verify(presented, secret) → bool
//
// secret names a [secrets] entry holding the SHA-256 of each accepted key, one per line, as
// "sha256:<64 hex digits>" (blank lines and lines starting with # are skipped). The result is
// true when sha256(presented) equals one of them. Every stored hash is compared, in constant
// time, whatever matched. An empty presented key is false. A missing secret, or one that is not
// such a list, is an evaluation error (the request fails closed with 500) naming the secret,
// never its value; the presented key appears in no error and no log.
//
// Store only hashes of high-entropy generated keys (32 random bytes, say): the hash is
// unsalted, so a guessable key could be found from its hash.
const APIKeyName = "hookwall.apikey.verify"

var apiKeyDecl = &rego.Function{
	Name: APIKeyName,
	Decl: types.NewFunction(
		types.Args(
			types.Named("presented", types.S).Description("the key the client sent, e.g. input.request.headers[\"x-api-key\"]"),
			types.Named("secret", types.S).Description("name of the [secrets] entry holding the accepted keys' sha256 hashes"),
		),
		types.Named("ok", types.B).Description("whether the key is one of the accepted keys"),
	),
}

func apiKeyBuiltin() *ast.Builtin {
	return &ast.Builtin{Name: APIKeyName, Decl: apiKeyDecl.Decl}
}

// apiKeys verifies presented keys against hash lists from a secret source. The parsed lists
// are cached by secret name: a source's values do not change (a new snapshot brings a new
// source and a new apiKeys). Safe for concurrent use.
type apiKeys struct {
	secrets SecretSource
	parsed  sync.Map // secret name → [][sha256.Size]byte
}

func newAPIKeys(secrets SecretSource) *apiKeys { return &apiKeys{secrets: secrets} }

func (a *apiKeys) option() func(*rego.Rego) { return rego.Function2(apiKeyDecl, a.call) }

func (a *apiKeys) testerBuiltin() *tester.Builtin {
	return &tester.Builtin{Decl: apiKeyBuiltin(), Func: a.option()}
}

// call is the builtin. OPA prefixes its errors with the builtin's name and location.
func (a *apiKeys) call(bctx rego.BuiltinContext, presentedT, nameT *ast.Term) (*ast.Term, error) {
	presented, ok := presentedT.Value.(ast.String)
	if !ok {
		return nil, errors.New("presented key must be a string")
	}
	noteSensitive(bctx.Context, string(presented)) // right or wrong, a key is not logged
	name, ok := nameT.Value.(ast.String)
	if !ok {
		return nil, errors.New("secret must be a secret name")
	}
	hashes, err := a.hashes(string(name))
	if err != nil {
		return nil, err
	}
	return ast.InternedTerm(matchAPIKey(string(presented), hashes)), nil
}

func (a *apiKeys) hashes(name string) ([][sha256.Size]byte, error) {
	if v, ok := a.parsed.Load(name); ok {
		return v.([][sha256.Size]byte), nil
	}
	raw, err := secret(a.secrets, name)
	if err != nil {
		return nil, err
	}
	hashes, err := parseKeyHashes(raw)
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, err)
	}
	a.parsed.Store(name, hashes)
	return hashes, nil
}

// parseKeyHashes reads "sha256:<hex>" lines. Its errors give line numbers, not contents.
func parseKeyHashes(raw []byte) ([][sha256.Size]byte, error) {
	var out [][sha256.Size]byte
	n := 0
	for line := range bytes.Lines(raw) {
		n++
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		h, ok := bytes.CutPrefix(line, []byte("sha256:"))
		var sum [sha256.Size]byte
		if !ok || len(h) != hex.EncodedLen(sha256.Size) {
			return nil, fmt.Errorf("line %d: want \"sha256:\" and 64 hex digits (the SHA-256 of a key, not the key)", n)
		}
		if _, err := hex.Decode(sum[:], h); err != nil {
			return nil, fmt.Errorf("line %d: not hex", n)
		}
		out = append(out, sum)
	}
	if len(out) == 0 {
		return nil, errors.New("no \"sha256:<hex>\" key hash in it")
	}
	return out, nil
}

// matchAPIKey compares the presented key's hash with every stored hash in constant time: the
// time taken depends on the number of hashes only, not on which (if any) matched.
func matchAPIKey(presented string, hashes [][sha256.Size]byte) bool {
	if presented == "" {
		return false
	}
	sum := sha256.Sum256(unsafeBytes(presented))
	found := 0
	for i := range hashes {
		found |= subtle.ConstantTimeCompare(sum[:], hashes[i][:])
	}
	return found == 1
}
