package fastpath

import (
	"fmt"
	"maps"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// UnsupportedError names the first construct of a package that the fast path does not
// evaluate.
type UnsupportedError struct {
	What     string
	Location *ast.Location
}

func (e *UnsupportedError) Error() string {
	if e.Location != nil {
		return fmt.Sprintf("%s:%d: %s", e.Location.File, e.Location.Row, e.What)
	}
	return e.What
}

func unsupported(loc *ast.Location, format string, args ...any) error {
	return &UnsupportedError{What: fmt.Sprintf(format, args...), Location: loc}
}

// Options are what Compile needs besides the compiled modules.
type Options struct {
	// Only, when set, names the one rule whose value is the result (the query data.pkg.rule).
	Only string
	// Builtins are the implementations of non-standard built-ins (hookwall's), by name.
	Builtins map[string]topdown.BuiltinFunc
	// RequestBuiltins stand in for some of Builtins, by name, where they read input.request
	// and the evaluation has a Request.
	RequestBuiltins map[string]RequestBuiltin
	// Decls declares every built-in the compiler knows, standard and custom, by name.
	Decls map[string]*ast.Builtin
	// Data is the base document: the data files, as the store topdown reads holds them. A
	// reference into data that names no rule is read from it once, when compiling (a policy
	// set's data does not change). Nil means the base document is unknown: such references
	// are then refused.
	Data map[string]any
}

// Compile compiles package pkg ("routes.github") from c, which must have compiled without
// errors: the rules of its document (or, with Only, that one rule), and whatever rules and
// functions of any package they refer to.
func Compile(c *ast.Compiler, pkg string, o Options) (*Program, error) {
	path := ast.MustParseRef("data." + pkg)
	cc := &compiler{c: c, opts: o, pkgs: newPackages(c), cidrs: &cidrCache{}}
	for _, p := range cc.pkgs.paths {
		if p.HasPrefix(path) && !p.Equal(path) {
			return nil, unsupported(cc.pkgs.mods[p.String()][0].Package.Location, "package %s has the nested package %s", pkg, p)
		}
	}
	if cc.overlapsData(path) {
		return nil, unsupported(nil, "data files put values in the package's own document, which topdown merges into it")
	}
	pk := cc.pkg(path)
	if pk == nil {
		return nil, unsupported(nil, "package %s has no rules", pkg)
	}
	p := &Program{only: -1, caps: c.Capabilities()}
	if o.Only != "" {
		i, ok := pk.rules[o.Only]
		if !ok || cc.sets[i].kind == kindFunc {
			return nil, unsupported(nil, "package %s has no rule %s", pkg, o.Only)
		}
		if err := cc.ensure(i); err != nil {
			return nil, err
		}
		p.only = i
	} else {
		for _, name := range pk.names { // sorted: the result document's order
			i := pk.rules[name]
			if cc.sets[i].kind == kindFunc {
				continue // a function is no part of the package document
			}
			if err := cc.ensure(i); err != nil {
				return nil, err
			}
			p.report = append(p.report, i)
		}
		for _, i := range p.report {
			p.fields = append(p.fields, fieldsDef(cc.sets[i]))
		}
	}
	if cc.readsData {
		// For the rule index, which may ask about the base document (see retry).
		v, err := ast.InterfaceToValue(o.Data)
		if err != nil {
			return nil, unsupported(nil, "base document: %v", err)
		}
		p.data = v
	}
	for _, rs := range cc.sets {
		rs.raw = nil // the rules never referred to
	}
	p.rules = cc.sets
	p.readsRequest, p.readsDocument = cc.readsRequest, cc.readsDocument
	return p, nil
}

type compiler struct {
	c    *ast.Compiler
	opts Options
	pkgs *packages
	sets []*ruleSet // every rule set declared so far, of every package
	// readsData: some reference reads the base document.
	readsData bool
	// readsRequest: some term may read input.request (or the whole input). readsDocument:
	// some term may read input other than through input.request.
	readsRequest, readsDocument bool
	cidrs                       *cidrCache // the program's, for net.cidr_contains
	// cur is the rule set whose definitions are being compiled.
	cur *ruleSet
}

// scope numbers a definition's variables and tracks which are bound at each point.
type scope struct {
	slots map[ast.Var]int
	bound map[ast.Var]bool
	// request holds the variables bound to input.request itself (OPA rewrites a call's
	// input.request operand into one): with a Request they read it from there.
	request map[ast.Var]bool
}

func (s *scope) slot(v ast.Var) int {
	i, ok := s.slots[v]
	if !ok {
		i = len(s.slots)
		s.slots[v] = i
	}
	return i
}

func (s *scope) clone() *scope {
	b := make(map[ast.Var]bool, len(s.bound))
	for k, v := range s.bound {
		b[k] = v
	}
	return &scope{slots: s.slots, bound: b, request: maps.Clone(s.request)}
}

// definition compiles one definition of rule set rs (an else branch is one too).
func (cc *compiler) definition(rs *ruleSet, rule *ast.Rule) (*definition, error) {
	sc := &scope{slots: map[ast.Var]int{}, bound: map[ast.Var]bool{}}
	d := &definition{loc: rule.Location, det: true}
	for _, a := range rule.Head.Args {
		spec := argSpec{slot: -1, same: -1}
		switch v := a.Value.(type) {
		case ast.Var:
			if sc.bound[v] {
				spec.same = sc.slot(v)
			} else {
				spec.slot = sc.slot(v)
				sc.bound[v] = true
			}
		default:
			if !a.IsGround() {
				return nil, unsupported(rule.Location, "function %s has the argument pattern %s", rs.name, a)
			}
			spec.want = a
		}
		d.args = append(d.args, spec)
	}
	body, err := cc.body(rule.Body, sc)
	if err != nil {
		return nil, err
	}
	d.body = body
	headTerm := rule.Head.Value
	switch rs.kind {
	case kindSet:
		headTerm = rule.Head.Key
	case kindObject:
		k, err := cc.term(rule.Head.Ref()[1], sc, rule.Location)
		if err != nil {
			return nil, err
		}
		d.key = k
	}
	if headTerm == nil {
		return nil, unsupported(rule.Location, "rule %s has no value", rs.name)
	}
	if d.head, err = cc.term(headTerm, sc, rule.Location); err != nil {
		return nil, err
	}
	if rs.kind == kindComplete && len(rule.Head.Args) == 0 {
		d.fields = cc.objectFields(rule)
		if headTerm.IsGround() && isTrueBody(rule.Body) {
			d.konst = headTerm
		}
	}
	d.nvars = len(sc.slots)
	for _, s := range body {
		if s.iter != nil {
			d.det = false
		}
	}
	return d, nil
}

// objectFields compiles a complete rule whose value is an object literal with constant keys
// a second way: its body, then each value on its own (see definition.fields); nil for any
// other rule. OPA's compiler has moved such a literal into the body by now when it holds a
// reference: the head is a variable the body's last expression unifies with the literal
// (dedupe := __local0__ if { …; __local0__ = {"key": __local1__, "ttl": "1h"} }).
func (cc *compiler) objectFields(rule *ast.Rule) *objectFields {
	head := rule.Head.Value
	body := rule.Body
	var obj ast.Object
	switch v := head.Value.(type) {
	case ast.Object:
		obj = v
	case ast.Var:
		if len(body) == 0 {
			return nil
		}
		last := body[len(body)-1]
		if !last.IsEquality() || last.Negated || len(last.With) > 0 {
			return nil
		}
		ops := last.Operands()
		for i, other := range []int{1, 0} {
			if ops[i].Value.Compare(v) == 0 {
				obj, _ = ops[other].Value.(ast.Object)
			}
		}
		body = body[:len(body)-1]
		if obj == nil || body.Vars(ast.VarVisitorParams{}).Contains(v) {
			return nil
		}
	default:
		return nil
	}
	if ast.IsConstant(obj) {
		return nil
	}
	sc := &scope{slots: map[ast.Var]int{}, bound: map[ast.Var]bool{}}
	steps, err := cc.body(body, sc)
	if err != nil {
		return nil
	}
	f := &objectFields{body: steps, det: true}
	for _, s := range steps {
		if s.iter != nil {
			f.det = false
		}
	}
	for _, k := range obj.Keys() {
		if !k.IsGround() {
			return nil
		}
		vf, err := cc.term(obj.Get(k), sc, rule.Location)
		if err != nil {
			return nil
		}
		f.keys, f.vals = append(f.keys, k), append(f.vals, vf)
	}
	f.nvars = len(sc.slots)
	return f
}

// isTrueBody reports whether b is the body OPA gives a rule without one: the term true.
func isTrueBody(b ast.Body) bool {
	if len(b) != 1 || b[0].Negated || len(b[0].With) > 0 {
		return false
	}
	t, ok := b[0].Terms.(*ast.Term)
	return ok && t.Equal(ast.BooleanTerm(true))
}

func (cc *compiler) body(b ast.Body, sc *scope) ([]step, error) {
	steps := make([]step, 0, len(b))
	for _, e := range b {
		s, err := cc.expr(e, sc)
		if err != nil {
			return nil, err
		}
		steps = append(steps, s)
	}
	return steps, nil
}

func (cc *compiler) expr(e *ast.Expr, sc *scope) (step, error) {
	if len(e.With) > 0 {
		return step{}, unsupported(e.Location, "with")
	}
	if e.Negated {
		inner := *e // shallow: the terms stay the compiler's (comprehension indices are by term)
		inner.Negated = false
		isc := sc.clone() // what the negated expression binds stays inside it
		s, err := cc.expr(&inner, isc)
		if err != nil {
			return step{}, err
		}
		if s.det != nil {
			return step{det: func(r *run, f frame) (bool, error) {
				ok, err := s.det(r, f)
				return !ok && err == nil, err
			}}, nil
		}
		// The first solution settles it; nested evaluations stop their own enumerations, so
		// an errStop that gets here is this one's.
		return step{det: func(r *run, f frame) (bool, error) {
			switch err := s.iter(r, f, nil, stopAtFirst); err {
			case nil:
				return true, nil
			case errStop:
				return false, nil
			default:
				return false, err
			}
		}}, nil
	}
	switch t := e.Terms.(type) {
	case *ast.Term:
		return cc.truth(t, sc, e.Location)
	case []*ast.Term:
		op := e.Operator()
		if op == nil {
			return step{}, unsupported(e.Location, "call of a non-reference")
		}
		switch name := op.String(); name {
		case ast.Equality.Name, ast.Assign.Name:
			if len(t) != 3 {
				return step{}, unsupported(e.Location, "%s with %d operands", name, len(t)-1)
			}
			return cc.unify(t[1], t[2], sc, e.Location)
		default:
			if op[0].Equal(ast.DefaultRootDocument) {
				return cc.callFunction(op, t[1:], sc, e.Location)
			}
			return cc.call(name, t[1:], sc, e.Location)
		}
	case *ast.SomeDecl:
		for _, s := range t.Symbols {
			if _, ok := s.Value.(ast.Var); !ok {
				return step{}, unsupported(e.Location, "some … in")
			}
		}
		return step{det: func(*run, frame) (bool, error) { return true, nil }}, nil
	default:
		return step{}, unsupported(e.Location, "expression %s", e)
	}
}

// stopAtFirst ends an enumeration at its first solution.
func stopAtFirst() error { return errStop }

// truth compiles an expression that is a single term: true when defined and not false, once
// per value the term enumerates.
func (cc *compiler) truth(t *ast.Term, sc *scope, loc *ast.Location) (step, error) {
	if ref, ok := t.Value.(ast.Ref); ok && cc.hasFresh(ref, sc) {
		c, err := cc.ref(ref, sc, loc)
		if err != nil {
			return step{}, err
		}
		return step{iter: func(r *run, f frame, rest []step, k func() error) error {
			return c.walk(r, f, func(v *ast.Term) error {
				if isFalse(v) {
					return nil
				}
				return evalBody(r, f, rest, k)
			})
		}}, nil
	}
	fn, err := cc.term(t, sc, loc)
	if err != nil {
		return step{}, err
	}
	return step{det: func(r *run, f frame) (bool, error) {
		v, err := fn(r, f)
		return v != nil && !isFalse(v), err
	}}, nil
}

// unify compiles a = b for the shapes compiled policies have: a fresh variable on one side,
// an enumerating reference against a ground term, or two ground terms.
func (cc *compiler) unify(a, b *ast.Term, sc *scope, loc *ast.Location) (step, error) {
	av, aFresh := cc.freshVar(a, sc)
	bv, bFresh := cc.freshVar(b, sc)
	switch {
	case aFresh && bFresh:
		return step{}, unsupported(loc, "unification of two unbound variables")
	case bFresh:
		a, b, av = b, a, bv
		fallthrough
	case aFresh:
		if ref, ok := b.Value.(ast.Ref); ok && refHasVar(ref, av) {
			// some k; input.m[k] == k: the reference binds k itself, so this is a comparison
			// of its value with the key it was reached by, not a binding.
			break
		}
		slot := sc.slot(av)
		if isInputRequest(b) {
			return cc.bindRequest(av, sc), nil
		}
		if ref, ok := b.Value.(ast.Ref); ok && cc.hasFresh(ref, sc) {
			c, err := cc.ref(ref, sc, loc)
			if err != nil {
				return step{}, err
			}
			sc.bound[av] = true
			return step{iter: func(r *run, f frame, rest []step, k func() error) error {
				return r.bindEach(c, f, slot, rest, k)
			}}, nil
		}
		fn, err := cc.term(b, sc, loc)
		if err != nil {
			return step{}, err
		}
		sc.bound[av] = true
		return step{det: func(r *run, f frame) (bool, error) {
			v, err := fn(r, f)
			if v == nil || err != nil {
				return false, err
			}
			f[slot] = v
			return true, nil
		}}, nil
	}
	// Neither side is a fresh variable (or the one that is, the other side binds).
	for _, pair := range [2][2]*ast.Term{{a, b}, {b, a}} {
		if ref, ok := pair[0].Value.(ast.Ref); ok && cc.hasFresh(ref, sc) {
			binds := cc.freshVars(ref, sc)
			c, err := cc.ref(ref, sc, loc)
			if err != nil {
				return step{}, err
			}
			other, err := cc.term(pair[1], sc, loc)
			if err != nil {
				return step{}, err
			}
			if termHasVar(pair[1], binds) {
				// The other side reads what the enumeration binds (input.m[k] == {"by": k},
				// input.a[i] == input.b[i]): it is evaluated for each binding.
				return step{iter: func(r *run, f frame, rest []step, k func() error) error {
					return c.walk(r, f, func(v *ast.Term) error {
						o, err := other(r, f)
						if o == nil || err != nil || !v.Equal(o) {
							return err
						}
						return evalBody(r, f, rest, k)
					})
				}}, nil
			}
			return step{iter: func(r *run, f frame, rest []step, k func() error) error {
				o, err := other(r, f)
				if o == nil || err != nil {
					return err
				}
				return c.walk(r, f, func(v *ast.Term) error {
					if !v.Equal(o) {
						return nil
					}
					return evalBody(r, f, rest, k)
				})
			}}, nil
		}
	}
	fa, err := cc.term(a, sc, loc)
	if err != nil {
		return step{}, err
	}
	fb, err := cc.term(b, sc, loc)
	if err != nil {
		return step{}, err
	}
	return step{det: func(r *run, f frame) (bool, error) {
		x, err := fa(r, f)
		if x == nil || err != nil {
			return false, err
		}
		y, err := fb(r, f)
		if y == nil || err != nil {
			return false, err
		}
		return x.Equal(y), nil
	}}, nil
}

// call compiles a call of a built-in: operands, then an optional output operand that is
// bound by the result or compared with it.
func (cc *compiler) call(name string, args []*ast.Term, sc *scope, loc *ast.Location) (step, error) {
	decl := cc.opts.Decls[name]
	if decl == nil {
		return step{}, unsupported(loc, "call of %s", name)
	}
	impl := cc.opts.Builtins[name]
	var quick quickFunc // only for a standard built-in: the caller's own keep their names
	if impl == nil {
		if !pureBuiltins[name] {
			return step{}, unsupported(loc, "built-in %s", name)
		}
		impl = topdown.GetBuiltin(name)
		if impl == nil {
			return step{}, unsupported(loc, "built-in %s has no implementation", name)
		}
		quick = cc.quick(name)
	}
	if decl.Decl.Result() == nil {
		return step{}, unsupported(loc, "void built-in %s", name)
	}
	arity := decl.Decl.Arity()
	ops, err := cc.operandTerms(name, arity, args, sc, loc)
	if err != nil {
		return step{}, err
	}
	// With a Request, a built-in that reads input.request may read it from there: its
	// operand is then not evaluated (reqOps) and is nil among the arguments.
	native, reqArg := RequestFunc(nil), -1
	var reqOps []termFn
	if rb, ok := cc.opts.RequestBuiltins[name]; ok && rb.Arg < arity && (isInputRequest(args[rb.Arg]) || sc.isRequest(args[rb.Arg])) {
		native, reqArg = rb.Func, rb.Arg
		if rb.Prepare != nil {
			consts := make([]*ast.Term, arity)
			for i, a := range args[:arity] {
				if i != reqArg && ast.IsConstant(a.Value) {
					consts[i] = a
				}
			}
			if fn := rb.Prepare(consts); fn != nil {
				native = fn
			}
		}
		reqOps = append([]termFn(nil), ops...)
		reqOps[reqArg] = func(*run, frame) (*ast.Term, error) { return nullTerm, nil }
	}
	// out: 0 none (the result must not be false), 1 bind a fresh variable, 2 compare.
	out, slot := 0, 0
	var want termFn
	if len(args) == arity+1 {
		if v, fresh := cc.freshVar(args[arity], sc); fresh {
			out, slot = 1, sc.slot(v)
			sc.bound[v] = true
		} else {
			fn, err := cc.term(args[arity], sc, loc)
			if err != nil {
				return step{}, err
			}
			out, want = 2, fn
		}
	}
	return step{det: func(r *run, f frame) (bool, error) {
		// Operands are evaluated before r.args is claimed: an operand may be a rule whose
		// evaluation calls built-ins of its own.
		var buf [4]*ast.Term
		useReq := native != nil && r.req != nil
		o := ops
		if useReq {
			o = reqOps
		}
		vals, err := operands(r, f, o, buf[:0])
		if vals == nil || err != nil {
			return false, err
		}
		r.args = append(r.args[:0], vals...)
		var res *ast.Term
		if quick != nil && !useReq {
			res = quick(r, r.args)
		}
		if res == nil {
			// The run's own context, its location set: built-ins do not call back into the
			// run, so no other call sees it meanwhile.
			r.res = nil
			r.bctx.Location = loc
			if useReq {
				r.args[reqArg] = nil
				err = native(&r.bctx, r.req, r.args, r.setRes)
			} else {
				err = impl(r.bctx, r.args, r.setRes)
			}
			res = r.res
		}
		clear(r.args)
		if err != nil {
			return false, err
		}
		if res == nil {
			return false, nil
		}
		switch out {
		case 1:
			f[slot] = res
			return true, nil
		case 2:
			w, err := want(r, f)
			if w == nil || err != nil {
				return false, err
			}
			return res.Equal(w), nil
		}
		return !isFalse(res), nil
	}}, nil
}

// callFunction compiles a call of a function (a rule with arguments) of any package: the
// operands, then an optional output operand, which must be an unbound variable.
func (cc *compiler) callFunction(op ast.Ref, args []*ast.Term, sc *scope, loc *ast.Location) (step, error) {
	tg, err := cc.resolve(op, loc)
	if err != nil {
		return step{}, err
	}
	if tg.rule < 0 || tg.rest != len(op) || cc.sets[tg.rule].kind != kindFunc {
		return step{}, unsupported(loc, "call of %s, which is not a function", op)
	}
	fi := tg.rule
	arity := cc.sets[fi].arity
	ops, err := cc.operandTerms(op.String(), arity, args, sc, loc)
	if err != nil {
		return step{}, err
	}
	out := -1
	if len(args) == arity+1 {
		// Topdown unifies a bound output with each definition's value before its body, which
		// is not the same as comparing it with the function's value; the compiler's rewriting
		// always leaves a fresh variable.
		v, fresh := cc.freshVar(args[arity], sc)
		if !fresh {
			return step{}, unsupported(loc, "call of %s with a bound output operand", op)
		}
		out = sc.slot(v)
		sc.bound[v] = true
	}
	return step{det: func(r *run, f frame) (bool, error) {
		var buf [4]*ast.Term
		vals, err := operands(r, f, ops, buf[:0])
		if vals == nil || err != nil {
			return false, err
		}
		res, err := r.call(fi, vals)
		if res == nil || err != nil {
			return false, err
		}
		if out >= 0 {
			f[out] = res
			return true, nil
		}
		return !isFalse(res), nil
	}}, nil
}

// comprehension compiles an array, set or object comprehension: its body sees the enclosing
// variables bound so far; what it binds stays inside it.
func (cc *compiler) comprehension(t *ast.Term, sc *scope, loc *ast.Location) (termFn, error) {
	if cc.c.ComprehensionIndex(t) != nil {
		// Topdown evaluates an indexed comprehension once for every value of the enclosing
		// variables it is keyed by, which may raise errors a single evaluation would not.
		return nil, unsupported(loc, "comprehension %s is indexed by topdown", t)
	}
	isc := sc.clone()
	var body ast.Body
	var heads []*ast.Term
	switch v := t.Value.(type) {
	case *ast.ArrayComprehension:
		body, heads = v.Body, []*ast.Term{v.Term}
	case *ast.SetComprehension:
		body, heads = v.Body, []*ast.Term{v.Term}
	case *ast.ObjectComprehension:
		body, heads = v.Body, []*ast.Term{v.Key, v.Value}
	}
	steps, err := cc.body(body, isc)
	if err != nil {
		return nil, err
	}
	fns := make([]termFn, len(heads))
	for i, h := range heads {
		if fns[i], err = cc.term(h, isc, loc); err != nil {
			return nil, err
		}
	}
	head := fns[0]
	switch v := t.Value.(type) {
	case *ast.ArrayComprehension:
		return func(r *run, f frame) (*ast.Term, error) {
			var elems []*ast.Term
			err := evalBody(r, f, steps, func() error {
				e, err := head(r, f)
				if e != nil {
					elems = append(elems, e)
				}
				return err
			})
			if err != nil {
				return nil, err
			}
			return ast.ArrayTerm(elems...), nil
		}, nil
	case *ast.SetComprehension:
		return func(r *run, f frame) (*ast.Term, error) {
			set := ast.NewSet()
			err := evalBody(r, f, steps, func() error {
				e, err := head(r, f)
				if e != nil {
					set.Add(e)
				}
				return err
			})
			if err != nil {
				return nil, err
			}
			return ast.NewTerm(set), nil
		}, nil
	default:
		value, keyLoc := fns[1], v.(*ast.ObjectComprehension).Key.Location
		return func(r *run, f frame) (*ast.Term, error) {
			obj := ast.NewObject()
			err := evalBody(r, f, steps, func() error {
				k, err := head(r, f)
				if k == nil || err != nil {
					return err
				}
				val, err := value(r, f)
				if val == nil || err != nil {
					return err
				}
				return insertLast(obj, k, val, keyLoc)
			})
			if err != nil {
				return nil, err
			}
			return ast.NewTerm(obj), nil
		}, nil
	}
}

// operandTerms compiles the arity input operands of a call to name; args may hold one more,
// the output operand, which the caller compiles.
func (cc *compiler) operandTerms(name string, arity int, args []*ast.Term, sc *scope, loc *ast.Location) ([]termFn, error) {
	if len(args) != arity && len(args) != arity+1 {
		return nil, unsupported(loc, "%s with %d operands", name, len(args))
	}
	ops := make([]termFn, arity)
	for i := range ops {
		fn, err := cc.term(args[i], sc, loc)
		if err != nil {
			return nil, err
		}
		ops[i] = fn
	}
	return ops, nil
}

// operands evaluates a call's operands into vals (grown past its capacity when need be); nil
// when one is undefined.
func operands(r *run, f frame, ops []termFn, vals []*ast.Term) ([]*ast.Term, error) {
	for _, fn := range ops {
		v, err := fn(r, f)
		if v == nil || err != nil {
			return nil, err
		}
		vals = append(vals, v)
	}
	if vals == nil { // no operands: defined all the same
		vals = []*ast.Term{}
	}
	return vals, nil
}

// freshVar reports whether t is a variable not bound at this point.
func (cc *compiler) freshVar(t *ast.Term, sc *scope) (ast.Var, bool) {
	v, ok := t.Value.(ast.Var)
	if !ok || v.Equal(ast.InputRootDocument.Value) || v.Equal(ast.DefaultRootDocument.Value) {
		return "", false
	}
	return v, !sc.bound[v]
}

// freshVars returns the unbound variables among a reference's keys: those it binds.
func (cc *compiler) freshVars(ref ast.Ref, sc *scope) ast.VarSet {
	vs := ast.NewVarSet()
	for _, k := range ref[1:] {
		if v, fresh := cc.freshVar(k, sc); fresh {
			vs.Add(v)
		}
	}
	return vs
}

// refHasVar reports whether v is one of a reference's keys (or inside one).
func refHasVar(ref ast.Ref, v ast.Var) bool {
	return termHasVar(ast.NewTerm(ref[1:]), ast.NewVarSet(v))
}

// termHasVar reports whether t mentions any of vs.
func termHasVar(t *ast.Term, vs ast.VarSet) bool {
	found := false
	ast.WalkVars(t, func(v ast.Var) bool {
		found = found || vs.Contains(v)
		return found
	})
	return found
}

// hasFresh reports whether a reference has an unbound variable among its keys.
func (cc *compiler) hasFresh(ref ast.Ref, sc *scope) bool {
	for _, k := range ref[1:] {
		if _, fresh := cc.freshVar(k, sc); fresh {
			return true
		}
	}
	return false
}

// term compiles a term that must be fully bound here.
func (cc *compiler) term(t *ast.Term, sc *scope, loc *ast.Location) (termFn, error) {
	switch v := t.Value.(type) {
	case ast.Null, ast.Boolean, ast.Number, ast.String:
		return func(*run, frame) (*ast.Term, error) { return t, nil }, nil
	case ast.Var:
		if v.Equal(ast.InputRootDocument.Value) {
			cc.readsRequest, cc.readsDocument = true, true
			return func(r *run, _ frame) (*ast.Term, error) { return r.inputValue(), nil }, nil
		}
		if !sc.bound[v] {
			return nil, unsupported(loc, "variable %s is not bound where it is read", v)
		}
		slot := sc.slot(v)
		if sc.request[v] {
			return func(r *run, f frame) (*ast.Term, error) { return r.requestVar(f[slot]), nil }, nil
		}
		return func(_ *run, f frame) (*ast.Term, error) { return f[slot], nil }, nil
	case ast.Ref:
		if cc.hasFresh(v, sc) {
			return nil, unsupported(loc, "reference %s enumerates where one value is needed", v)
		}
		c, err := cc.ref(v, sc, loc)
		if err != nil {
			return nil, err
		}
		return c.get, nil
	case *ast.Array:
		if t.IsGround() {
			return func(*run, frame) (*ast.Term, error) { return t, nil }, nil
		}
		elems := make([]termFn, v.Len())
		for i := range elems {
			fn, err := cc.term(v.Elem(i), sc, loc)
			if err != nil {
				return nil, err
			}
			elems[i] = fn
		}
		return func(r *run, f frame) (*ast.Term, error) {
			out := make([]*ast.Term, len(elems))
			for i, fn := range elems {
				e, err := fn(r, f)
				if e == nil || err != nil {
					return nil, err
				}
				out[i] = e
			}
			return ast.ArrayTerm(out...), nil
		}, nil
	case ast.Set:
		if t.IsGround() {
			return func(*run, frame) (*ast.Term, error) { return t, nil }, nil
		}
		var elems []termFn
		for _, e := range v.Slice() {
			fn, err := cc.term(e, sc, loc)
			if err != nil {
				return nil, err
			}
			elems = append(elems, fn)
		}
		return func(r *run, f frame) (*ast.Term, error) {
			set := ast.NewSet()
			for _, fn := range elems {
				e, err := fn(r, f)
				if e == nil || err != nil {
					return nil, err
				}
				set.Add(e)
			}
			return ast.NewTerm(set), nil
		}, nil
	case *ast.ArrayComprehension, *ast.SetComprehension, *ast.ObjectComprehension:
		return cc.comprehension(t, sc, loc)
	case ast.Object:
		if t.IsGround() {
			return func(*run, frame) (*ast.Term, error) { return t, nil }, nil
		}
		var keys, vals []termFn
		for _, k := range v.Keys() {
			kf, err := cc.term(k, sc, loc)
			if err != nil {
				return nil, err
			}
			vf, err := cc.term(v.Get(k), sc, loc)
			if err != nil {
				return nil, err
			}
			keys, vals = append(keys, kf), append(vals, vf)
		}
		return func(r *run, f frame) (*ast.Term, error) {
			obj := ast.NewObjectWithCapacity(len(keys))
			for i := range keys {
				k, err := keys[i](r, f)
				if k == nil || err != nil {
					return nil, err
				}
				val, err := vals[i](r, f)
				if val == nil || err != nil {
					return nil, err
				}
				obj.Insert(k, val)
			}
			return ast.NewTerm(obj), nil
		}, nil
	}
	return nil, unsupported(loc, "term %s (%s)", t, ast.ValueName(t.Value))
}

// refKey is one key of a compiled reference.
type refKey struct {
	fn   termFn
	bind int // ≥ 0: an unbound variable's slot, bound by enumeration
}

// compiledRef is a reference: where it starts and the keys that lead from there.
type compiledRef struct {
	base termFn
	keys []refKey
	// stored: the base is a value of the base document, whose keys are read as topdown
	// reads storage (storageIndex), not compared as values.
	stored bool
}

// get returns the one value of a reference none of whose keys enumerates.
func (c *compiledRef) get(r *run, f frame) (*ast.Term, error) {
	cur, err := c.base(r, f)
	for i := 0; cur != nil && err == nil && i < len(c.keys); i++ {
		var kv *ast.Term
		kv, err = c.keys[i].fn(r, f)
		if c.stored {
			cur = storageIndex(cur, kv)
		} else {
			cur = index(cur, kv)
		}
	}
	if err != nil {
		return nil, err
	}
	return cur, nil
}

// walk calls k with every value the reference reaches, binding its enumerating keys.
func (c *compiledRef) walk(r *run, f frame, k func(*ast.Term) error) error {
	b, err := c.base(r, f)
	if err != nil {
		return err
	}
	return c.walkFrom(r, f, b, 0, k)
}

func (c *compiledRef) walkFrom(r *run, f frame, cur *ast.Term, i int, k func(*ast.Term) error) error {
	for ; i < len(c.keys); i++ {
		if cur == nil {
			return nil
		}
		if c.keys[i].bind >= 0 {
			slot, next := c.keys[i].bind, i+1
			if arr, ok := cur.Value.(*ast.Array); ok {
				// An array is enumerated here, as each would, without a closure to allocate
				// for every enumeration (some x in ["a", "b"] is the common one).
				for j := 0; j < arr.Len(); j++ {
					if err := r.tick(); err != nil {
						return err
					}
					f[slot] = ast.InternedTerm(j)
					if err := c.walkFrom(r, f, arr.Elem(j), next, k); err != nil {
						return err
					}
				}
				return nil
			}
			return each(cur, func(kk, vv *ast.Term) error {
				if err := r.tick(); err != nil {
					return err
				}
				f[slot] = kk
				return c.walkFrom(r, f, vv, next, k)
			})
		}
		kv, err := c.keys[i].fn(r, f)
		if err != nil {
			return err
		}
		if c.stored {
			cur = storageIndex(cur, kv)
		} else {
			cur = index(cur, kv)
		}
	}
	if cur == nil {
		return nil
	}
	return k(cur)
}

// ref compiles a reference. Keys that are unbound variables enumerate the collection at
// their position and bind.
func (cc *compiler) ref(ref ast.Ref, sc *scope, loc *ast.Location) (*compiledRef, error) {
	head, ok := ref[0].Value.(ast.Var)
	if !ok {
		return nil, unsupported(loc, "reference %s has a non-variable head", ref)
	}
	c := &compiledRef{}
	rest := ref[1:]
	switch {
	case head.Equal(ast.InputRootDocument.Value):
		var n int
		c.base, n = cc.inputBase(ref)
		rest = ref[n:]
	case head.Equal(ast.DefaultRootDocument.Value):
		tg, err := cc.resolve(ref, loc)
		if err != nil {
			return nil, err
		}
		if tg.rule >= 0 {
			rs := cc.sets[tg.rule]
			switch rs.kind {
			case kindFunc:
				return nil, unsupported(loc, "reference %s to a function is not a call", ref)
			case kindSet, kindObject, kindGroup:
				// Topdown evaluates such a rule for one key alone when the key is known,
				// which may skip errors that evaluating the whole rule raises.
				if tg.rest < len(ref) {
					if _, fresh := cc.freshVar(ref[tg.rest], sc); !fresh {
						return nil, unsupported(loc, "reference %s looks up one key of %s", ref, rs.name)
					}
				}
			}
			i := tg.rule
			c.base = func(r *run, _ frame) (*ast.Term, error) { return r.rule(i) }
		} else {
			k := tg.konst
			c.base = func(*run, frame) (*ast.Term, error) { return k, nil }
			c.stored = true
		}
		rest = ref[tg.rest:]
	case sc.request[head]:
		// The same reference from input.request.
		var n int
		c.base, n = cc.inputBase(append(ast.Ref{ast.InputRootDocument, requestKey}, ref[1:]...))
		rest = ref[n-1:]
	default:
		if !sc.bound[head] {
			return nil, unsupported(loc, "reference %s starts at an unbound variable", ref)
		}
		slot := sc.slot(head)
		c.base = func(_ *run, f frame) (*ast.Term, error) { return f[slot], nil }
	}
	if c.stored && cc.cur != nil {
		for _, k := range rest {
			switch k.Value.(type) {
			case ast.Var, ast.Ref:
				// Topdown's rule index decides whether data.m[input.k] can hold by comparing
				// keys as values, while evaluation reads storage: its candidates are asked
				// for on every evaluation of this rule (see retry).
				cc.cur.indexAlways = true
			}
		}
	}
	c.keys = make([]refKey, len(rest))
	for i, k := range rest {
		if v, fresh := cc.freshVar(k, sc); fresh {
			c.keys[i] = refKey{bind: sc.slot(v)}
			sc.bound[v] = true
			continue
		}
		fn, err := cc.term(k, sc, loc)
		if err != nil {
			return nil, err
		}
		c.keys[i] = refKey{fn: fn, bind: -1}
	}
	return c, nil
}

// quickFunc answers a call of a standard built-in on its operands as the built-in would,
// without a BuiltinContext to copy and hand over; nil means it leaves this call to the
// built-in. ops is the run's r.args: it must not be kept.
type quickFunc func(r *run, ops []*ast.Term) *ast.Term

// quick returns the quickFunc of standard built-in name, nil when it has none: the calls a
// webhook policy makes on every request (x in allowed, net.cidr_contains over an allowlist).
func (cc *compiler) quick(name string) quickFunc {
	switch name {
	case "internal.member_2":
		return member
	case "net.cidr_contains":
		return cc.cidrs.quick
	}
	return nil
}

// member is internal.member_2 (x in xs) as topdown's builtinMember answers it: never an error.
func member(_ *run, ops []*ast.Term) *ast.Term {
	x := ops[0]
	switch c := ops[1].Value.(type) {
	case ast.Set:
		return ast.InternedTerm(c.Contains(x))
	case *ast.Array:
		for i := range c.Len() {
			if x.Equal(c.Elem(i)) {
				return ast.InternedTerm(true)
			}
		}
		return ast.InternedTerm(false)
	case ast.Object:
		return ast.InternedTerm(c.Until(func(_, v *ast.Term) bool { return x.Equal(v) }))
	}
	return ast.InternedTerm(false)
}

// pureBuiltins are the standard built-ins the fast path calls: deterministic, one result
// per call, and needing nothing from the built-in context but its Context, Location, Cancel
// and Capabilities (json.match_schema's network allowance for remote references).
var pureBuiltins = map[string]bool{
	"internal.member_2": true, "internal.member_3": true,
	"equal": true, "neq": true, "lt": true, "lte": true, "gt": true, "gte": true,
	"plus": true, "minus": true, "mul": true, "div": true, "rem": true, "abs": true,
	"round": true, "ceil": true, "floor": true,
	"count": true, "sum": true, "max": true, "min": true,
	"concat": true, "sprintf": true, "startswith": true, "endswith": true, "contains": true,
	"lower": true, "upper": true, "trim": true, "trim_left": true, "trim_right": true,
	"trim_prefix": true, "trim_suffix": true, "trim_space": true, "split": true,
	"substring": true, "indexof": true, "replace": true, "strings.replace_n": true,
	"format_int": true, "to_number": true,
	"is_string": true, "is_number": true, "is_boolean": true, "is_array": true,
	"is_object": true, "is_set": true, "is_null": true, "type_name": true,
	"object.get": true, "object.keys": true, "object.union": true, "object.union_n": true, "array.concat": true, "array.slice": true,
	"and": true, "or": true, "union": true, "intersection": true,
	"net.cidr_contains": true,
	"base64.decode":     true, "base64.encode": true, "base64url.decode": true,
	"base64url.encode": true, "base64url.encode_no_pad": true, "hex.decode": true, "hex.encode": true,
	"json.marshal": true, "json.unmarshal": true, "json.is_valid": true,
	"json.match_schema": true, "json.verify_schema": true,
	"units.parse_bytes": true, "time.parse_rfc3339_ns": true, "time.parse_duration_ns": true,
	"crypto.hmac.equal": true, "crypto.sha256": true, "crypto.hmac.sha256": true,
	"urlquery.decode": true,
}
