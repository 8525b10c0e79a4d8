package policy

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/types"

	"github.com/hookwall/hookwall/engine/webhook"
)

// VerifyName is the Rego name of the signature builtin.
const VerifyName = "hookwall.webhook.verify"

var verifyDecl = &rego.Function{
	Name: VerifyName,
	Decl: types.NewFunction(
		types.Args(
			types.Named("scheme", types.S).Description("signature scheme, e.g. \"github\""),
			types.Named("request", types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))).Description("input.request"),
			types.Named("opts", types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))).Description("{\"secret\": name or [names], \"tolerance\": \"5m\", \"url\": …}"),
		),
		types.Named("result", types.NewObject(nil, types.NewDynamicProperty(types.S, types.A))).Description("{\"valid\": bool, \"reason\": string}"),
	),
	// Not memoized: OPA's memo key renders every argument as text, which for a request with
	// a body costs more than the HMAC it would save. Policies bind the result once instead.
	Nondeterministic: true, // depends on the clock (timestamp tolerance)
}

func customBuiltinDecls() map[string]*ast.Builtin {
	return map[string]*ast.Builtin{
		VerifyName: {Name: VerifyName, Decl: verifyDecl.Decl, Nondeterministic: true},
		APIKeyName: apiKeyBuiltin(),
	}
}

func (s *Set) builtinOptions() []func(*rego.Rego) {
	return []func(*rego.Rego){
		rego.Function3(verifyDecl, verifier{secrets: s.opts.Secrets, now: s.opts.Now}.call),
		newAPIKeys(s.opts.Secrets).option(),
	}
}

// TesterBuiltins returns the hookwall builtins for OPA's test runner, so *_test.rego files run
// with the production implementation (and can still mock it with `with`).
func TesterBuiltins(secrets SecretSource, now func() time.Time) []*tester.Builtin {
	v := verifier{secrets: secrets, now: now}
	return []*tester.Builtin{{
		Decl: &ast.Builtin{Name: VerifyName, Decl: verifyDecl.Decl, Nondeterministic: true},
		Func: rego.Function3(verifyDecl, v.call),
	}, newAPIKeys(secrets).testerBuiltin()}
}

type verifier struct {
	secrets SecretSource
	now     func() time.Time
}

var (
	keyValid  = ast.StringTerm("valid")
	keyReason = ast.StringTerm("reason")
	validTerm = ast.ObjectTerm(ast.Item(keyValid, ast.BooleanTerm(true)), ast.Item(keyReason, ast.StringTerm("")))
)

func (v verifier) call(bctx rego.BuiltinContext, schemeT, reqT, optsT *ast.Term) (*ast.Term, error) {
	scheme, ok := schemeT.Value.(ast.String)
	if !ok {
		return nil, errors.New("scheme must be a string")
	}
	reqObj, ok := reqT.Value.(ast.Object)
	if !ok {
		return nil, errors.New("request must be an object (pass input.request)")
	}
	optObj, ok := optsT.Value.(ast.Object)
	if !ok {
		return nil, errors.New("opts must be an object")
	}
	req := webhook.Request{
		Method:     objString(reqObj, "method"),
		Scheme:     objString(reqObj, "scheme"),
		Host:       objString(reqObj, "host"),
		RequestURI: requestURI(reqObj),
		Header:     headerView{obj: objObject(reqObj, "headers")},
		Body:       unsafeBytes(objString(reqObj, "body")),
	}
	o, err := v.options(string(scheme), optObj, bctx)
	if err != nil {
		return nil, err
	}
	res, err := webhook.Verify(string(scheme), &req, &o)
	if err != nil {
		return nil, err
	}
	if res.Valid {
		return validTerm, nil
	}
	return ast.ObjectTerm(ast.Item(keyValid, ast.BooleanTerm(false)), ast.Item(keyReason, ast.StringTerm(res.Reason))), nil
}

func (v verifier) options(scheme string, o ast.Object, bctx rego.BuiltinContext) (webhook.Options, error) {
	var out webhook.Options
	if v.now != nil {
		out.Now = v.now()
	} else if bctx.Time != nil {
		if n, ok := bctx.Time.Value.(ast.Number); ok {
			if ns, ok := n.Int64(); ok {
				out.Now = time.Unix(0, ns)
			}
		}
	}
	var err error
	o.Foreach(func(k, val *ast.Term) {
		if err != nil {
			return
		}
		key, _ := k.Value.(ast.String)
		switch key {
		case "secret":
			err = v.addSecrets(&out, val)
		case "tolerance":
			s, ok := val.Value.(ast.String)
			if !ok {
				err = errors.New("opts.tolerance must be a duration string such as \"5m\"")
				return
			}
			out.Tolerance, err = time.ParseDuration(string(s))
			if err != nil || out.Tolerance <= 0 {
				err = fmt.Errorf("opts.tolerance: invalid duration %q", string(s))
			}
		case "url", "algorithm", "header", "prefix", "encoding", "template", "timestamp_header", "id_header":
			s, ok := val.Value.(ast.String)
			if !ok {
				err = fmt.Errorf("opts.%s must be a string", key)
				return
			}
			switch key {
			case "url":
				out.URL = string(s)
			case "algorithm":
				out.Algorithm = string(s)
			case "header":
				out.SigHeader = strings.ToLower(string(s))
			case "prefix":
				out.Prefix = string(s)
			case "encoding":
				out.Encoding = string(s)
			case "template":
				out.Template = string(s)
			case "timestamp_header":
				out.TimestampHeader = strings.ToLower(string(s))
			case "id_header":
				out.IDHeader = strings.ToLower(string(s))
			}
		default:
			err = fmt.Errorf("opts: unknown key %s (known: secret, tolerance, url, algorithm, header, prefix, encoding, template, timestamp_header, id_header)", k)
		}
	})
	if err != nil {
		return out, fmt.Errorf("%s(%q): %w", VerifyName, scheme, err)
	}
	return out, nil
}

func (v verifier) addSecrets(out *webhook.Options, val *ast.Term) error {
	add := func(t *ast.Term) error {
		name, ok := t.Value.(ast.String)
		if !ok {
			return errors.New("opts.secret must be a secret name or a list of names")
		}
		if v.secrets == nil {
			return fmt.Errorf("opts.secret: no secret named %q in [secrets]", string(name))
		}
		b, ok := v.secrets.Get(string(name))
		if !ok {
			return fmt.Errorf("opts.secret: no secret named %q in [secrets]", string(name))
		}
		out.Secrets = append(out.Secrets, b)
		return nil
	}
	switch x := val.Value.(type) {
	case ast.String:
		return add(val)
	case *ast.Array:
		var err error
		x.Foreach(func(t *ast.Term) {
			if err == nil {
				err = add(t)
			}
		})
		return err
	case ast.Set:
		var err error
		x.Foreach(func(t *ast.Term) {
			if err == nil {
				err = add(t)
			}
		})
		return err
	}
	return errors.New("opts.secret must be a secret name or a list of names")
}

// headerView reads headers from input.request.headers without copying them into a map.
type headerView struct{ obj ast.Object }

func (h headerView) Get(name string) string {
	if h.obj == nil {
		return ""
	}
	t := h.obj.Get(ast.InternedTerm(name))
	if t == nil {
		return ""
	}
	s, _ := t.Value.(ast.String)
	return string(s)
}

func objString(o ast.Object, key string) string {
	t := o.Get(ast.InternedTerm(key))
	if t == nil {
		return ""
	}
	s, _ := t.Value.(ast.String)
	return string(s)
}

func objObject(o ast.Object, key string) ast.Object {
	t := o.Get(ast.InternedTerm(key))
	if t == nil {
		return nil
	}
	obj, _ := t.Value.(ast.Object)
	return obj
}

// requestURI prefers the raw request URI the input builder records, so the signed URL is the
// one received (query order and escaping intact).
func requestURI(o ast.Object) string {
	if u := objString(o, "uri"); u != "" {
		return u
	}
	return objString(o, "path")
}

// unsafeBytes views s as bytes without copying; webhook.Verify only reads Body.
func unsafeBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

var _ topdown.QueryTracer // tracer type is part of EvalOption
