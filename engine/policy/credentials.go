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
// hookwall.apikey.verify and hookwall.oauth.verify when it carries input.request.headers["name"]
// (credEnv.headerNames: directly, through local variables bound to it, to the headers object
// or to the request, through object.get(headers, "name", default), through a call that
// computes the argument from it, as trim_prefix(…, "Bearer "), or a part of such a call's
// result, as split(…, " ")[1], or through a rule of any module bound so, as `presented := input.request.headers["x-api-key"]`), and the opts.header of
// hookwall.webhook.verify (the generic "hmac" signature header) when it is a constant. A
// credential computed from input.request.path (a key sent as a path segment, as
// trim_prefix(input.request.path, "/hooks/tg/")) is listed as credPathName, not a header.
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
	for _, name := range slices.Sorted(maps.Keys(mods)) {
		if IsTestFile(name) {
			continue
		}
		m := mods[name]
		pkg := strings.TrimPrefix(m.Package.Path.String(), "data.")
		add := func(h string) {
			if h != "" && !slices.Contains(out[pkg], h) {
				out[pkg] = append(out[pkg], h)
			}
		}
		for _, r := range m.Rules {
			env := newCredEnv(r, named)
			ast.WalkExprs(r, func(e *ast.Expr) bool {
				if !e.IsCall() {
					return false
				}
				args := e.Operands()
				switch e.Operator().String() {
				case APIKeyName, OAuthName:
					if len(args) > 0 {
						env.headerNames(args[0], 0, add)
					}
				case VerifyName:
					if len(args) > 2 {
						add(constantHeaderOpt(env.deref(args[2], 0)))
					}
				}
				return false
			})
		}
	}
	return out
}

// credEnv is what one rule binds, as the compiler rewrote it: each variable unified with a
// term (another variable included), and each variable that is a call's output, with the
// call. named are the rules bound to request headers (headerRules); nil while those are
// being found.
type credEnv struct {
	bound map[ast.Var]*ast.Term
	calls map[ast.Var]*ast.Expr
	named map[string][]string
}

// maxCredDepth bounds how many bindings headerNames follows: variables bound to each other
// in a loop must not send it round forever.
const maxCredDepth = 32

var objectGetRef = ast.ObjectGet.Ref()

func newCredEnv(r *ast.Rule, named map[string][]string) credEnv {
	env := credEnv{bound: map[ast.Var]*ast.Term{}, calls: map[ast.Var]*ast.Expr{}, named: named}
	ast.WalkExprs(r, func(e *ast.Expr) bool {
		switch {
		case e.IsEquality() || e.IsAssignment():
			ops := e.Operands()
			if len(ops) != 2 {
				return false
			}
			for i, t := range ops {
				if v, ok := t.Value.(ast.Var); ok {
					// A binding to a term wins over one to another variable (x = y; x = …).
					_, newVar := ops[1-i].Value.(ast.Var)
					if old, seen := env.bound[v]; !seen {
						env.bound[v] = ops[1-i]
					} else if _, oldVar := old.Value.(ast.Var); oldVar && !newVar {
						env.bound[v] = ops[1-i]
					}
				}
			}
		case e.IsCall():
			if v, ok := callOutput(e); ok {
				env.calls[v] = e
			}
		}
		return false
	})
	return env
}

// callOutput is the variable a call expression binds its result to: its last operand, when
// the call has one more operand than the builtin takes (an operator that is no builtin, a
// function of the policy's, is taken to have one).
func callOutput(e *ast.Expr) (ast.Var, bool) {
	ops := e.Operands()
	if len(ops) == 0 {
		return "", false
	}
	v, ok := ops[len(ops)-1].Value.(ast.Var)
	if !ok {
		return "", false
	}
	if b := ast.BuiltinMap[e.Operator().String()]; b != nil && b.Decl != nil && len(b.Decl.FuncArgs().Args) != len(ops)-1 {
		return "", false
	}
	return v, true
}

// deref follows t through variables bound to variables, to the first term that is not one
// (or to a variable the rule does not bind).
func (env credEnv) deref(t *ast.Term, depth int) *ast.Term {
	for ; depth < maxCredDepth; depth++ {
		v, ok := t.Value.(ast.Var)
		if !ok {
			return t
		}
		b, ok := env.bound[v]
		if !ok {
			return t
		}
		t = b
	}
	return t
}

// expandRef is the reference t is, with a head variable bound to a reference replaced by it
// (h["x-api-key"] where h := input.request.headers is input.request.headers["x-api-key"]).
func (env credEnv) expandRef(t *ast.Term, depth int) (ast.Ref, bool) {
	ref, ok := env.deref(t, depth).Value.(ast.Ref)
	for ok && depth < maxCredDepth {
		if ref[0].Equal(ast.InputRootDocument) || ref[0].Equal(ast.DefaultRootDocument) {
			return ref, true
		}
		b, bound := env.deref(ref[0], depth).Value.(ast.Ref)
		if !bound {
			return ref, true
		}
		ref = b.Concat(ref[1:])
		depth++
	}
	return ref, ok
}

// headerNames calls add with the name of each request header whose value t may carry, as
// far as the rule shows: input.request.headers["name"] itself, through variables bound to
// it, to the headers object or to the request, object.get(headers, "name", …), the arguments
// of a call whose output t is (a value computed from a header carries it: masking a header
// the call did not use hides nothing the log needs), and the rules bound to headers.
func (env credEnv) headerNames(t *ast.Term, depth int, add func(string)) {
	if depth >= maxCredDepth {
		return
	}
	t = env.deref(t, depth)
	switch v := t.Value.(type) {
	case ast.Var:
		e, ok := env.calls[v]
		if !ok {
			return
		}
		args := e.Operands()
		args = args[:len(args)-1]
		if e.Operator().Equal(objectGetRef) && len(args) > 1 {
			if name, ok := args[1].Value.(ast.String); ok {
				if ref, ok := env.expandRef(args[0], depth+1); ok && ref.Equal(requestHeadersRef) {
					add(string(name))
				}
			}
		}
		for _, a := range args {
			env.headerNames(a, depth+1, add)
		}
	case ast.Ref:
		ref, _ := env.expandRef(t, depth+1)
		if h := requestHeaderName(ref); h != "" {
			add(h)
			return
		}
		if ref.Equal(requestPathRef) {
			add(credPathName)
			return
		}
		for _, h := range env.named[ref.String()] {
			add(h)
		}
		// A part of a call's result (split(h, " ")[1], the Bearer idiom) carries what the
		// call was handed.
		if v, ok := ref[0].Value.(ast.Var); ok {
			if _, call := env.calls[v]; call {
				env.headerNames(ref[0], depth+1, add)
			}
		}
	case *ast.Array:
		v.Foreach(func(e *ast.Term) { env.headerNames(e, depth+1, add) })
	}
}

var (
	requestHeadersRef = ast.MustParseRef("input.request.headers")
	requestPathRef    = ast.MustParseRef("input.request.path")
)

// credPathName stands, among a package's credential headers, for input.request.path: no
// header is named so (a field name holds no ':'), and none is read under it.
const credPathName = ":path"

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
				newCredEnv(d, nil).headerNames(d.Head.Value, 0, func(h string) {
					if !slices.Contains(out[k], h) {
						out[k] = append(out[k], h)
					}
				})
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
func requestHeaderName(ref ast.Ref) string {
	if len(ref) != 4 || !ref.HasPrefix(requestHeadersRef) {
		return ""
	}
	name, _ := ref[3].Value.(ast.String)
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
			if h != credPathName && !slices.Contains(names, h) {
				names = append(names, h)
			}
		}
	}
	slices.Sort(names)
	return names
}

// credentialPathOf reports whether pkg, or a package it refers to, hands a value computed
// from input.request.path to a builtin as a credential (credentialHeaders).
func (s *Set) credentialPathOf(pkg string) bool {
	for _, p := range s.reachable(pkg) {
		if slices.Contains(s.credHeaders[p], credPathName) {
			return true
		}
	}
	return false
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
