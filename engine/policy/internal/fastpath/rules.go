package fastpath

import (
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// ruleKind is what a rule set's value is made of.
type ruleKind uint8

const (
	kindComplete ruleKind = iota // p := v: one value
	kindFunc                     // f(x) := v: one value per arguments
	kindSet                      // p contains x: the set of every definition's keys
	kindObject                   // p[k] := v: the object of every definition's keys and values
	kindGroup                    // p.a := v, p.b := w: an object of complete rules, one per constant key
)

// pkgInfo is one package's rules by name; the rule sets are compiled on first reference.
type pkgInfo struct {
	path  ast.Ref
	rules map[string]int
	names []string // sorted
}

// packages indexes the compiler's modules by package, so that a reference can be resolved to
// the package that holds it.
type packages struct {
	mods  map[string][]*ast.Module // by package path ("data.a.b"), in file order
	paths []ast.Ref
	info  map[string]*pkgInfo
}

func newPackages(c *ast.Compiler) *packages {
	ps := &packages{mods: map[string][]*ast.Module{}, info: map[string]*pkgInfo{}}
	for _, m := range c.Modules {
		k := m.Package.Path.String()
		if _, ok := ps.mods[k]; !ok {
			ps.paths = append(ps.paths, m.Package.Path)
		}
		ps.mods[k] = append(ps.mods[k], m)
	}
	for _, ms := range ps.mods {
		// The order topdown evaluates a rule's definitions in: the modules' (their file names).
		sort.Slice(ms, func(i, j int) bool { return ms[i].Package.Location.File < ms[j].Package.Location.File })
	}
	return ps
}

// pkg returns the package at path, declaring its rules on first use; nil when there is none.
func (cc *compiler) pkg(path ast.Ref) *pkgInfo {
	k := path.String()
	if pk, ok := cc.pkgs.info[k]; ok {
		return pk
	}
	mods, ok := cc.pkgs.mods[k]
	if !ok {
		return nil
	}
	pk := &pkgInfo{path: path, rules: map[string]int{}}
	cc.pkgs.info[k] = pk
	for _, m := range mods {
		for _, rule := range m.Rules {
			cc.declare(pk, rule)
		}
	}
	for name := range pk.rules {
		pk.names = append(pk.names, name)
	}
	sort.Strings(pk.names)
	return pk
}

// newSet adds a rule set to the program's table.
func (cc *compiler) newSet(path ast.Ref, key *ast.Term, kind ruleKind, loc *ast.Location) int {
	cc.sets = append(cc.sets, &ruleSet{path: path, name: path.String(), key: key, kind: kind, loc: loc, arity: -1})
	return len(cc.sets) - 1
}

// declare files a rule under its name. A rule the fast path cannot evaluate marks its rule set
// bad; that is an error only if the rule set is ever referenced (or is part of the queried
// package's document).
func (cc *compiler) declare(pk *pkgInfo, rule *ast.Rule) {
	ref := rule.Head.Ref()
	nv, ok := ref[0].Value.(ast.Var)
	if !ok {
		return // the compiler does not produce these
	}
	name := string(nv)
	path := pk.path.Append(ast.StringTerm(name))
	full := path.String()
	kind := kindComplete
	var child *ast.Term
	switch {
	case len(rule.Head.Args) > 0 && len(ref) == 1:
		kind = kindFunc
	case len(rule.Head.Args) > 0:
		// A function under a reference head (p.q.f(x)) makes its first key an object in the
		// package document (p: {"q": {}}), beside any rule sharing that key: not a function.
		kind = kindGroup
	case len(ref) == 1 && rule.Head.RuleKind() == ast.MultiValue:
		kind = kindSet
	case len(ref) == 1:
	case len(ref) == 2 && rule.Head.RuleKind() == ast.SingleValue:
		switch ref[1].Value.(type) {
		case ast.String:
			kind, child = kindGroup, ref[1]
		case ast.Var:
			kind = kindObject
		}
	}
	i, ok := pk.rules[name]
	if !ok {
		i = cc.newSet(path, ast.StringTerm(name), kind, rule.Location)
		pk.rules[name] = i
	}
	rs := cc.sets[i]
	if rs.bad != nil {
		return
	}
	bad := func(format string, args ...any) { rs.bad = unsupported(rule.Location, format, args...) }
	switch {
	case len(ref) > 1 && rule.Head.RuleKind() != ast.SingleValue:
		bad("partial set rule %s has a reference head", ref)
		return
	case len(ref) > 1 && len(rule.Head.Args) > 0:
		bad("function %s has a reference head", ref)
		return
	case len(ref) > 2:
		bad("rule %s has a reference head deeper than one key", ref)
		return
	case len(ref) == 2 && kind == kindComplete:
		bad("rule %s has a reference head whose key is neither a string nor a variable", ref)
		return
	case rs.kind != kind:
		bad("rule %s is defined both as %s and as %s", full, kindName(rs.kind), kindName(kind))
		return
	}
	if kind == kindGroup {
		ci := -1
		for _, c := range rs.children {
			if c.key.Equal(child) {
				ci = c.idx
			}
		}
		if ci < 0 {
			ci = cc.newSet(path.Append(child), child, kindComplete, rule.Location)
			rs.children = append(rs.children, childRule{key: child, idx: ci})
			sort.Slice(rs.children, func(a, b int) bool { return rs.children[a].key.Value.Compare(rs.children[b].key.Value) < 0 })
		}
		rs = cc.sets[ci]
		if rs.bad != nil {
			return
		}
		bad = func(format string, args ...any) { rs.bad = unsupported(rule.Location, format, args...) }
	}
	if kind == kindFunc {
		if rs.arity < 0 {
			rs.arity = len(rule.Head.Args)
		} else if rs.arity != len(rule.Head.Args) {
			bad("function %s is defined with %d and %d arguments", full, rs.arity, len(rule.Head.Args))
			return
		}
	}
	if rule.Default {
		if !rule.Head.Value.IsGround() {
			bad("default value of %s is not a constant", full)
			return
		}
		for _, a := range rule.Head.Args {
			if _, ok := a.Value.(ast.Var); !ok {
				bad("default function %s has an argument that is not a variable", full)
				return
			}
		}
		rs.dflt = rule.Head.Value
		return
	}
	rs.raw = append(rs.raw, rule)
}

func kindName(k ruleKind) string {
	switch k {
	case kindFunc:
		return "a function"
	case kindSet:
		return "a partial set"
	case kindObject:
		return "a partial object"
	case kindGroup:
		return "an object of constant keys"
	}
	return "a single value"
}

// ensure compiles rule set i's definitions, once; it fails when the rule set is outside the
// subset.
func (cc *compiler) ensure(i int) error {
	rs := cc.sets[i]
	if rs.bad != nil {
		return rs.bad
	}
	if rs.compiled {
		return nil
	}
	rs.compiled = true // before the definitions: a rule may be referred to while compiling them
	for _, c := range rs.children {
		if err := cc.ensure(c.idx); err != nil {
			return err
		}
	}
	if len(rs.raw) > 0 {
		if err := unhashableNumber(rs.raw); err != nil {
			rs.bad = err
			return err
		}
		rs.index = cc.c.RuleIndex(rs.path)
		rs.byRule = map[*ast.Rule]*definition{}
	}
	prev := cc.cur
	cc.cur = rs
	defer func() { cc.cur = prev }()
	for _, rule := range rs.raw {
		d, err := cc.definition(rs, rule)
		if err != nil {
			rs.bad = err
			return err
		}
		rs.byRule[rule] = d
		for e := rule.Else; e != nil; e = e.Else {
			ed, err := cc.definition(rs, e)
			if err != nil {
				rs.bad = err
				return err
			}
			d.elses = append(d.elses, ed)
			rs.byRule[e] = ed
		}
		rs.defs = append(rs.defs, d)
	}
	rs.early = earlyExit(rs.kind, rs.raw)
	if len(rs.defs) == 1 && rs.defs[0].konst != nil && len(rs.defs[0].elses) == 0 && !rs.indexAlways {
		rs.konst = rs.defs[0].konst
	}
	rs.raw = nil
	return nil
}

// earlyExit reports whether topdown stops at the first definition that yields a value, as its
// rule index decides (ast.IndexResult.EarlyExit): single-value rules all of whose definitions,
// else branches included, have the same constant value. Topdown then skips the remaining
// definitions and solutions, and with them any error they would raise.
func earlyExit(kind ruleKind, rules []*ast.Rule) bool {
	if kind != kindComplete && kind != kindFunc {
		return false
	}
	var value ast.Value
	for _, rule := range rules {
		for r := rule; r != nil; r = r.Else {
			if r.Head.DocKind() != ast.CompleteDoc {
				return false
			}
			if r.Head.Value == nil {
				continue
			}
			v := r.Head.Value.Value
			if !v.IsGround() || (value != nil && !ast.ValueEqual(value, v)) {
				return false
			}
			value = v
		}
	}
	return true
}

// target is what a data reference reaches: a rule set, or a constant of the base document.
type target struct {
	rule  int       // ≥ 0: a rule set; -1: konst
	konst *ast.Term // the base document's value there; nil: undefined
	rest  int       // the reference's keys from here on index into the value
}

// resolve finds what a data reference names: a rule of some package (then, for a rule made of
// constant keys, the one key's rule), or a value of the base document.
func (cc *compiler) resolve(ref ast.Ref, loc *ast.Location) (target, error) {
	n := 1 // ref[:n] is the constant part
	for n < len(ref) {
		if _, ok := ref[n].Value.(ast.String); !ok {
			break
		}
		n++
	}
	for j := n - 1; j >= 2; j-- {
		pk := cc.pkg(ref[:j])
		if pk == nil {
			continue
		}
		name := string(ref[j].Value.(ast.String))
		i, ok := pk.rules[name]
		if !ok {
			return target{}, unsupported(loc, "reference %s names no rule of package %s", ref, ref[:j])
		}
		if cc.overlapsData(ref[:j+1]) {
			return target{}, unsupported(loc, "reference %s reaches rules that data files overlap", ref)
		}
		rest := j + 1
		rs := cc.sets[i]
		// A constant key of a rule made of constant keys names one of them, which topdown
		// evaluates alone; other keys are the caller's (a variable enumerates them all).
		if key, ok := keyAt(ref, rest); ok && rs.kind == kindGroup {
			rest++
			i = -1
			for _, c := range rs.children {
				if c.key.Value.Compare(key) == 0 {
					i = c.idx
				}
			}
			if i < 0 {
				return target{rule: -1, rest: rest}, nil // no rule defines the key: undefined
			}
		}
		if err := cc.ensure(i); err != nil {
			return target{}, err
		}
		return target{rule: i, rest: rest}, nil
	}
	if n < 2 {
		return target{}, unsupported(loc, "reference %s selects a document of data by a variable", ref)
	}
	for _, p := range cc.pkgs.paths {
		if p.HasPrefix(ref[:n]) {
			return target{}, unsupported(loc, "reference %s is a document that contains the package %s", ref, p)
		}
	}
	if cc.opts.Data == nil {
		return target{}, unsupported(loc, "reference %s reads the base document (data files)", ref)
	}
	cc.readsData = true
	var cur any = cc.opts.Data
	for _, k := range ref[1:n] {
		var ok bool
		if cur, ok = storageChild(cur, string(k.Value.(ast.String))); !ok {
			// Undefined; the keys past the prefix are compiled all the same, binding
			// their variables (to nothing).
			return target{rule: -1, rest: n}, nil
		}
	}
	v, err := ast.InterfaceToValue(cur)
	if err != nil {
		return target{}, unsupported(loc, "reference %s: base document: %v", ref, err)
	}
	return target{rule: -1, konst: ast.NewTerm(v), rest: n}, nil
}

// keyAt returns ref[i] when it is a string.
func keyAt(ref ast.Ref, i int) (ast.String, bool) {
	if i >= len(ref) {
		return "", false
	}
	s, ok := ref[i].Value.(ast.String)
	return s, ok
}

// overlapsData reports whether the base document has a value at a rule's path, below it, or
// at a prefix of it that is not an object: topdown would merge it with the rule's value.
func (cc *compiler) overlapsData(path ast.Ref) bool {
	if cc.opts.Data == nil {
		return false // the caller checks the queried package; other packages are its business
	}
	var cur any = cc.opts.Data
	for _, k := range path[1:] {
		m, ok := cur.(map[string]any)
		if !ok {
			return true
		}
		s, _ := k.Value.(ast.String)
		if cur, ok = m[string(s)]; !ok {
			return false
		}
	}
	return true
}

// storageChild reads one step of a storage path in the base document as the store does:
// an object's key, or an array's index parsed from the key (util.Atoi: "1", "+1", "1.0").
func storageChild(cur any, key string) (any, bool) {
	switch c := cur.(type) {
	case map[string]any:
		v, ok := c[key]
		return v, ok
	case []any:
		i, ok := util.Atoi(key)
		if !ok || i < 0 || i >= len(c) {
			return nil, false
		}
		return c[i], true
	}
	return nil, false
}

// storageIndex looks key up in a value of the base document the way topdown reads it: a
// reference into data becomes a storage path, whose keys are strings (a number is its text;
// a boolean, null or composite key reaches nothing), and an array's index is parsed from the
// string. A value's own comparison does not apply: data.m[2] reads the key "2".
func storageIndex(coll, key *ast.Term) *ast.Term {
	if coll == nil || key == nil {
		return nil
	}
	var s string
	switch k := key.Value.(type) {
	case ast.String:
		s = string(k)
	case ast.Number:
		s = string(k)
	default:
		return nil
	}
	switch c := coll.Value.(type) {
	case ast.Object:
		if _, ok := key.Value.(ast.String); ok {
			return c.Get(key)
		}
		return c.Get(ast.StringTerm(s))
	case *ast.Array:
		i, ok := util.Atoi(s)
		if !ok || i < 0 || i >= c.Len() {
			return nil
		}
		return c.Elem(i)
	}
	return nil
}

// unhashableNumber refuses rules holding a number beyond float64's range. OPA hashes such
// a number by its text, so 1e400 and 10e399 are equal but hash apart: topdown's rule index
// never offers a definition comparing with one to an input spelling it the other way, and
// the definition yields nothing there, while the compiled definition, asking the index
// only when it fails, would hold.
func unhashableNumber(rules []*ast.Rule) error {
	var err error
	for _, rule := range rules { // its else branches too
		ast.WalkTerms(rule, func(t *ast.Term) bool {
			if n, ok := t.Value.(ast.Number); ok && err == nil {
				if _, fits := n.Float64(); !fits {
					err = unsupported(t.Location, "number %s is beyond float64's range, which topdown's rule index hashes by its spelling", n)
				}
			}
			return err != nil
		})
	}
	return err
}
