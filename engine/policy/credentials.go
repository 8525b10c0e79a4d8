package policy

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
)

// credentialHeaders finds, in the compiled modules, the request headers whose values a package
// hands to hookwall's builtins as credentials, by name: the first argument of
// hookwall.apikey.verify and hookwall.oauth.verify when it is input.request.headers["name"]
// (directly, through a local variable bound to it, or through a rule of any module bound to
// it alone, as `presented := input.request.headers["x-api-key"]`), and the opts.header of
// hookwall.webhook.verify (the generic "hmac" signature header) when it is a constant.
//
// A builtin masks what it is handed only when it runs; a policy that decides before the call
// (a content-type check that fails first, say) would otherwise leave the credential in clear in
// the decision log. Knowing the names, every evaluation of a route's query notes those headers'
// values whether or not the call is reached. A name the compiler cannot see (a header name
// computed at evaluation, an argument passed through a function of the policy's own) is masked
// only when the builtin runs. Test files are skipped: no route serves them.
func credentialHeaders(mods map[string]*ast.Module) map[string][]string {
	out := map[string][]string{}
	named := headerRules(mods)
	walkCalls(mods, func(_ string, m *ast.Module, bound map[ast.Var]*ast.Term, e *ast.Expr) {
		pkg := strings.TrimPrefix(m.Package.Path.String(), "data.")
		args := e.Operands()
		var h string
		switch e.Operator().String() {
		case APIKeyName, OAuthName:
			if len(args) > 0 {
				t := resolveLocal(args[0], bound)
				if h = requestHeaderName(t); h == "" {
					for _, h := range named[t.String()] {
						if !slices.Contains(out[pkg], h) {
							out[pkg] = append(out[pkg], h)
						}
					}
				}
			}
		case VerifyName:
			if len(args) > 2 {
				h = constantHeaderOpt(resolveLocal(args[2], bound))
			}
		}
		if h != "" && !slices.Contains(out[pkg], h) {
			out[pkg] = append(out[pkg], h)
		}
	})
	return out
}

// walkCalls calls visit with every call expression in the rules of mods' policy files (not
// the tests), file by file in name order, and the local bindings of its rule
// (localBindings).
func walkCalls(mods map[string]*ast.Module, visit func(name string, m *ast.Module, bound map[ast.Var]*ast.Term, e *ast.Expr)) {
	for _, name := range slices.Sorted(maps.Keys(mods)) {
		if IsTestFile(name) {
			continue
		}
		m := mods[name]
		for _, r := range m.Rules {
			bound := localBindings(r)
			ast.WalkExprs(r, func(e *ast.Expr) bool {
				if e.IsCall() {
					visit(name, m, bound, e)
				}
				return false
			})
		}
	}
}

// headerRules maps the reference of each rule whose value is input.request.headers["name"]
// (`presented := input.request.headers["x-api-key"]`, with conditions or without) to the
// names: a policy that binds its credential so, then hands the rule to a builtin, names the
// header as surely as one that hands the reference itself. A rule defined more than once
// (one header or another) names each.
func headerRules(mods map[string]*ast.Module) map[string][]string {
	out := map[string][]string{}
	for _, m := range mods {
		for _, r := range m.Rules {
			k := r.Ref().String() // absolute: the modules are the compiler's (load.go)
			// Each definition and each else: compiled, a value is a local variable the
			// body binds to the reference (or, unrewritten, the reference itself). A
			// condition beside it does not matter: masking the header when the policy
			// would not have used it hides nothing the log needs.
			for d := r; d != nil; d = d.Else {
				if d.Head.Value == nil || len(d.Head.Args) > 0 {
					continue
				}
				if h := requestHeaderName(resolveLocal(d.Head.Value, localBindings(d))); h != "" && !slices.Contains(out[k], h) {
					out[k] = append(out[k], h)
				}
			}
		}
	}
	return out
}

// localBindings maps each variable of r that one of its expressions binds by unification to
// the term it is bound to (the compiler rewrites a call's non-variable arguments, and every
// `x := …`, into such expressions; its local variables are unique within a rule).
func localBindings(r *ast.Rule) map[ast.Var]*ast.Term {
	bound := map[ast.Var]*ast.Term{}
	ast.WalkExprs(r, func(e *ast.Expr) bool {
		if !e.IsEquality() && !e.IsAssignment() {
			return false
		}
		ops := e.Operands()
		if len(ops) != 2 {
			return false
		}
		for i, t := range ops {
			if v, ok := t.Value.(ast.Var); ok {
				if _, isVar := ops[1-i].Value.(ast.Var); !isVar {
					bound[v] = ops[1-i]
				}
			}
		}
		return false
	})
	return bound
}

// resolveLocal is t, or the term the local variable t is bound to.
func resolveLocal(t *ast.Term, bound map[ast.Var]*ast.Term) *ast.Term {
	if v, ok := t.Value.(ast.Var); ok {
		if b, ok := bound[v]; ok {
			return b
		}
	}
	return t
}

// requestHeaderName is "name" for the reference input.request.headers["name"], else "".
func requestHeaderName(t *ast.Term) string {
	ref, ok := t.Value.(ast.Ref)
	if !ok || len(ref) != 4 || !ref[0].Equal(ast.InputRootDocument) {
		return ""
	}
	for i, want := range []string{"request", "headers"} {
		if s, ok := ref[i+1].Value.(ast.String); !ok || string(s) != want {
			return ""
		}
	}
	name, ok := ref[3].Value.(ast.String)
	if !ok {
		return ""
	}
	return string(name)
}

// constantHeaderOpt is the lower-cased constant opts.header of a verify call's opts object (the
// builtin lower-cases it too), else "".
func constantHeaderOpt(t *ast.Term) string {
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return ""
	}
	h := obj.Get(optHeader)
	if h == nil {
		return ""
	}
	s, ok := h.Value.(ast.String)
	if !ok {
		return ""
	}
	return strings.ToLower(string(s))
}

// credentialHeadersOf are the credential headers of pkg and of every package it refers to,
// sorted.
func (s *Set) credentialHeadersOf(pkg string) []string {
	var names []string
	for _, p := range s.reachable(pkg) {
		for _, h := range s.credHeaders[p] {
			if !slices.Contains(names, h) {
				names = append(names, h)
			}
		}
	}
	slices.Sort(names)
	return names
}

// noteCredentialHeaders notes as sensitive, in the Sensitive ctx carries, the values the
// request holds under the names: the request as the caller holds it (req), else doc's
// input.request.headers. Nothing is read when ctx carries none.
func noteCredentialHeaders(ctx context.Context, names []string, doc ast.Value, req Request) {
	if ctx == nil {
		return
	}
	if s, ok := ctx.Value(SensitiveKey{}).(*Sensitive); !ok || s == nil {
		return
	}
	var headers ast.Object
	if req == nil {
		if d, ok := doc.(ast.Object); ok {
			if r := objObject(d, inputRequest); r != nil {
				headers = objObject(r, reqHeaders)
			}
		}
	}
	for _, name := range names {
		var v string
		switch {
		case req != nil:
			if c, ok := req.(capturedRequest); ok {
				v = c.Get(name)
			} else if t := req.Header(name); t != nil {
				s, _ := t.Value.(ast.String)
				v = string(s)
			}
		case headers != nil:
			v = headerView{obj: headers}.Get(name)
		}
		noteSensitive(ctx, v)
	}
}

var inputRequest = ast.StringTerm("request")
