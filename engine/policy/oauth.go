package policy

import (
	"context"
	"errors"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/types"

	"github.com/hookwall/hookwall/engine/oauth"
)

// OAuthName is the Rego name of the bearer-token builtin:
//
//	hookwall.oauth.verify(token, issuer) → {"valid": bool, "reason": string, "claims": object}
//
// token is a bare token or an Authorization header value ("Bearer …"); issuer names an
// [[oauth]] entry. A refused token gives valid false, a reason (never the token) and empty
// claims. An issuer that gateway.toml does not configure is refused at load when a served
// policy names it as a constant, and is an evaluation error (the request fails closed with
// 500) when computed; so is a token that is not a string. Topdown memoizes the call per
// evaluation; the compiled evaluator evaluates a rule once per evaluation, so bind the
// result to a rule (`token := hookwall.oauth.verify(…)`) and read it from there.
const OAuthName = "hookwall.oauth.verify"

// OAuthVerifier checks bearer tokens for OAuthName; engine/oauth's Set is one.
type OAuthVerifier interface {
	Verify(ctx context.Context, issuer, token string, now time.Time) (oauth.Result, error)
	// Has reports whether issuer is configured: a served policy naming another as a constant
	// is refused at load.
	Has(issuer string) bool
}

var oauthDecl = &rego.Function{
	Name: OAuthName,
	Decl: types.NewFunction(
		types.Args(
			types.Named("token", types.S).Description("a bearer token, or an Authorization header value such as input.request.headers.authorization"),
			types.Named("issuer", types.S).Description("the name of an [[oauth]] issuer"),
		),
		types.Named("result", types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))).Description("{\"valid\": bool, \"reason\": string, \"claims\": object}"),
	),
	Memoize:          true,
	Nondeterministic: true, // the clock, and the issuer's keys
}

func oauthBuiltin() *ast.Builtin {
	return &ast.Builtin{Name: OAuthName, Decl: oauthDecl.Decl, Nondeterministic: true}
}

type oauthCall struct {
	v   OAuthVerifier
	now func() time.Time
}

func (o oauthCall) option() func(*rego.Rego) { return rego.Function2(oauthDecl, o.call) }

func (o oauthCall) testerBuiltin() *tester.Builtin {
	return &tester.Builtin{Decl: oauthBuiltin(), Func: o.option()}
}

var (
	keyClaims    = ast.StringTerm("claims")
	noClaimsTerm = ast.ObjectTerm()
)

func (o oauthCall) call(bctx rego.BuiltinContext, tokT, issT *ast.Term) (*ast.Term, error) {
	tok, ok := tokT.Value.(ast.String)
	if !ok {
		return nil, errors.New("token must be a string")
	}
	noteSensitive(bctx.Context, string(tok))
	iss, ok := issT.Value.(ast.String)
	if !ok {
		return nil, errors.New("issuer must be the name of an [[oauth]] issuer")
	}
	if o.v == nil {
		return nil, errors.New("no [[oauth]] issuer is configured")
	}
	now := verifier{now: o.now}.clock(&bctx)
	if now.IsZero() {
		now = time.Now()
	}
	ctx := bctx.Context
	if ctx == nil {
		ctx = context.Background()
	}
	res, err := o.v.Verify(ctx, string(iss), string(tok), now)
	if err != nil {
		return nil, err
	}
	claims := noClaimsTerm
	if res.Valid {
		v, err := ast.InterfaceToValue(res.Claims)
		if err != nil {
			return nil, err
		}
		claims = ast.NewTerm(v)
	}
	return ast.ObjectTerm(
		ast.Item(keyValid, ast.InternedTerm(res.Valid)),
		ast.Item(keyReason, ast.StringTerm(res.Reason)),
		ast.Item(keyClaims, claims),
	), nil
}
