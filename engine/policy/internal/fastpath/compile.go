package fastpath

import (
	"fmt"
	"sort"
	"strings"

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
	// Decls declares every built-in the compiler knows, standard and custom, by name.
	Decls map[string]*ast.Builtin
}

// Compile compiles the rules of package pkg ("routes.github") from c, which must have
// compiled without errors.
func Compile(c *ast.Compiler, pkg string, o Options) (*Program, error) {
	path := ast.MustParseRef("data." + pkg)
	cc := &compiler{pkg: path, opts: o, byName: map[string]int{}}
	var mods []*ast.Module
	for _, m := range c.Modules {
		switch {
		case m.Package.Path.Equal(path):
			mods = append(mods, m)
		case m.Package.Path.HasPrefix(path):
			return nil, unsupported(m.Package.Location, "package %s has the nested package %s", pkg, m.Package.Path)
		}
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Package.Location.File < mods[j].Package.Location.File })
	for _, m := range mods {
		for _, rule := range m.Rules {
			if err := cc.declare(rule); err != nil {
				return nil, err
			}
		}
	}
	p := &Program{only: -1}
	cc.p = p
	p.rules = make([]*ruleSet, len(cc.sets))
	copy(p.rules, cc.sets)
	for i, rs := range cc.sets {
		for _, rule := range cc.defs[i] {
			d, err := cc.definition(rule)
			if err != nil {
				return nil, err
			}
			rs.defs = append(rs.defs, d)
		}
	}
	if o.Only != "" {
		i, ok := cc.byName[o.Only]
		if !ok {
			return nil, unsupported(nil, "package %s has no rule %s", pkg, o.Only)
		}
		p.only = i
	}
	for i := range p.rules {
		p.report = append(p.report, i)
	}
	sort.Slice(p.report, func(a, b int) bool { return p.rules[p.report[a]].name < p.rules[p.report[b]].name })
	return p, nil
}

type compiler struct {
	p      *Program
	pkg    ast.Ref
	opts   Options
	sets   []*ruleSet
	defs   [][]*ast.Rule
	byName map[string]int
}

// declare files a rule under its name; definitions are compiled once every name is known.
func (cc *compiler) declare(rule *ast.Rule) error {
	if len(rule.Head.Args) > 0 {
		return nil // a function is no part of the package document; a call of one is refused
	}
	if len(rule.Head.Ref()) != 1 {
		return unsupported(rule.Location, "rule %s has a reference head", rule.Head.Ref())
	}
	if rule.Else != nil {
		return unsupported(rule.Location, "rule %s uses else", rule.Head.Name)
	}
	name := string(rule.Head.Name)
	multi := rule.Head.RuleKind() == ast.MultiValue
	i, ok := cc.byName[name]
	if !ok {
		i = len(cc.sets)
		cc.byName[name] = i
		cc.sets = append(cc.sets, &ruleSet{name: name, key: ast.StringTerm(name), multi: multi, loc: rule.Location})
		cc.defs = append(cc.defs, nil)
	}
	rs := cc.sets[i]
	if rs.multi != multi {
		return unsupported(rule.Location, "rule %s is both a set and a single value", name)
	}
	if rule.Default {
		if !rule.Head.Value.IsGround() {
			return unsupported(rule.Location, "default value of %s is not a constant", name)
		}
		rs.dflt = rule.Head.Value
		return nil
	}
	cc.defs[i] = append(cc.defs[i], rule)
	return nil
}

// scope numbers a definition's variables and tracks which are bound at each point.
type scope struct {
	slots map[ast.Var]int
	bound map[ast.Var]bool
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
	return &scope{slots: s.slots, bound: b}
}

func (cc *compiler) definition(rule *ast.Rule) (*definition, error) {
	sc := &scope{slots: map[ast.Var]int{}, bound: map[ast.Var]bool{}}
	body, err := cc.body(rule.Body, sc)
	if err != nil {
		return nil, err
	}
	headTerm := rule.Head.Value
	if rule.Head.RuleKind() == ast.MultiValue {
		headTerm = rule.Head.Key
	}
	if headTerm == nil {
		return nil, unsupported(rule.Location, "rule %s has no value", rule.Head.Name)
	}
	head, err := cc.term(headTerm, sc, rule.Location)
	if err != nil {
		return nil, err
	}
	d := &definition{body: body, nvars: len(sc.slots), head: head, constHead: headTerm.IsGround(), det: true}
	for _, s := range body {
		if s.iter != nil {
			d.det = false
		}
	}
	return d, nil
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
		inner := e.Copy()
		inner.Negated = false
		isc := sc.clone() // what the negated expression binds stays inside it
		s, err := cc.expr(inner, isc)
		if err != nil {
			return step{}, err
		}
		body := []step{s}
		return step{det: func(r *run, f frame) (bool, error) {
			found := false
			err := evalBody(r, f, body, func() error { found = true; return errStop })
			if err != nil && err != errStop {
				return false, err
			}
			return !found, nil
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

// truth compiles an expression that is a single term: true when defined and not false, once
// per value the term enumerates.
func (cc *compiler) truth(t *ast.Term, sc *scope, loc *ast.Location) (step, error) {
	if ref, ok := t.Value.(ast.Ref); ok && cc.hasFresh(ref, sc) {
		c, err := cc.ref(ref, sc, loc)
		if err != nil {
			return step{}, err
		}
		return step{iter: func(r *run, f frame, k func() error) error {
			return c.walk(r, f, func(v *ast.Term) error {
				if isFalse(v) {
					return nil
				}
				return k()
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
		slot := sc.slot(av)
		if ref, ok := b.Value.(ast.Ref); ok && cc.hasFresh(ref, sc) {
			c, err := cc.ref(ref, sc, loc)
			if err != nil {
				return step{}, err
			}
			sc.bound[av] = true
			return step{iter: func(r *run, f frame, k func() error) error {
				return c.walk(r, f, func(v *ast.Term) error { f[slot] = v; return k() })
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
	// Neither side is a fresh variable.
	for _, pair := range [2][2]*ast.Term{{a, b}, {b, a}} {
		if ref, ok := pair[0].Value.(ast.Ref); ok && cc.hasFresh(ref, sc) {
			c, err := cc.ref(ref, sc, loc)
			if err != nil {
				return step{}, err
			}
			other, err := cc.term(pair[1], sc, loc)
			if err != nil {
				return step{}, err
			}
			return step{iter: func(r *run, f frame, k func() error) error {
				o, err := other(r, f)
				if o == nil || err != nil {
					return err
				}
				return c.walk(r, f, func(v *ast.Term) error {
					if !v.Equal(o) {
						return nil
					}
					return k()
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
		if strings.HasPrefix(name, "data.") {
			return step{}, unsupported(loc, "call of the function %s", name)
		}
		return step{}, unsupported(loc, "call of %s", name)
	}
	impl := cc.opts.Builtins[name]
	if impl == nil {
		if !pureBuiltins[name] {
			return step{}, unsupported(loc, "built-in %s", name)
		}
		impl = topdown.GetBuiltin(name)
		if impl == nil {
			return step{}, unsupported(loc, "built-in %s has no implementation", name)
		}
	}
	if decl.Decl.Result() == nil {
		return step{}, unsupported(loc, "void built-in %s", name)
	}
	arity := decl.Decl.Arity()
	if len(args) != arity && len(args) != arity+1 {
		return step{}, unsupported(loc, "%s with %d operands", name, len(args))
	}
	ops := make([]termFn, arity)
	for i := range ops {
		fn, err := cc.term(args[i], sc, loc)
		if err != nil {
			return step{}, err
		}
		ops[i] = fn
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
		vals := buf[:0]
		if len(ops) > len(buf) {
			vals = make([]*ast.Term, 0, len(ops))
		}
		for _, fn := range ops {
			v, err := fn(r, f)
			if v == nil || err != nil {
				return false, err
			}
			vals = append(vals, v)
		}
		r.args = append(r.args[:0], vals...)
		r.res = nil
		bctx := r.bctx
		bctx.Location = loc
		err := impl(bctx, r.args, r.setRes)
		res := r.res
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

// freshVar reports whether t is a variable not bound at this point.
func (cc *compiler) freshVar(t *ast.Term, sc *scope) (ast.Var, bool) {
	v, ok := t.Value.(ast.Var)
	if !ok || v.Equal(ast.InputRootDocument.Value) || v.Equal(ast.DefaultRootDocument.Value) {
		return "", false
	}
	return v, !sc.bound[v]
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
			return func(r *run, _ frame) (*ast.Term, error) { return r.input, nil }, nil
		}
		if !sc.bound[v] {
			return nil, unsupported(loc, "variable %s is not bound where it is read", v)
		}
		slot := sc.slot(v)
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
}

// get returns the one value of a reference none of whose keys enumerates.
func (c *compiledRef) get(r *run, f frame) (*ast.Term, error) {
	cur, err := c.base(r, f)
	for i := 0; cur != nil && err == nil && i < len(c.keys); i++ {
		var kv *ast.Term
		kv, err = c.keys[i].fn(r, f)
		cur = index(cur, kv)
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
			return each(cur, func(kk, vv *ast.Term) error {
				f[slot] = kk
				return c.walkFrom(r, f, vv, next, k)
			})
		}
		kv, err := c.keys[i].fn(r, f)
		if err != nil {
			return err
		}
		cur = index(cur, kv)
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
		c.base = func(r *run, _ frame) (*ast.Term, error) { return r.input, nil }
	case head.Equal(ast.DefaultRootDocument.Value):
		if len(ref) <= len(cc.pkg) || !ref.HasPrefix(cc.pkg) {
			return nil, unsupported(loc, "reference %s is outside the package", ref)
		}
		name, ok := ref[len(cc.pkg)].Value.(ast.String)
		if !ok {
			return nil, unsupported(loc, "reference %s selects a rule by a variable", ref)
		}
		i, ok := cc.byName[string(name)]
		if !ok {
			return nil, unsupported(loc, "reference %s names no rule of the package", ref)
		}
		c.base = func(r *run, _ frame) (*ast.Term, error) { return r.rule(i) }
		rest = ref[len(cc.pkg)+1:]
	default:
		if !sc.bound[head] {
			return nil, unsupported(loc, "reference %s starts at an unbound variable", ref)
		}
		slot := sc.slot(head)
		c.base = func(_ *run, f frame) (*ast.Term, error) { return f[slot], nil }
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

// pureBuiltins are the standard built-ins the fast path calls: deterministic, one result
// per call, and needing nothing from the built-in context but its Context, Location and
// Cancel.
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
	"object.get": true, "object.keys": true, "array.concat": true, "array.slice": true,
	"and": true, "or": true, "union": true, "intersection": true,
	"net.cidr_contains": true,
	"base64.decode":     true, "base64.encode": true, "base64url.decode": true,
	"base64url.encode": true, "base64url.encode_no_pad": true, "hex.decode": true, "hex.encode": true,
	"json.marshal": true, "json.unmarshal": true, "json.is_valid": true,
	"units.parse_bytes": true, "time.parse_rfc3339_ns": true, "time.parse_duration_ns": true,
	"crypto.hmac.equal": true, "crypto.sha256": true, "crypto.hmac.sha256": true,
}
