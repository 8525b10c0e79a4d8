package fastpath

import (
	"context"
	"errors"
	"net/netip"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Program is one package's compiled decision. Safe for concurrent use: all per-evaluation
// state lives in a run.
type Program struct {
	rules  []*ruleSet // every rule set the program may evaluate, of any package
	report []int      // the queried package's rules that make up the result document, by name
	// fields holds, per rule of report, its definition when EvalRules may hand its value
	// over unbuilt (see evalFields), nil otherwise: decided once, when compiling.
	fields []*definition
	only   int // ≥ 0: the result is this rule's value alone
	caps   *ast.Capabilities
	data   ast.Value // the base document, when the caller gave it
	// readsRequest: some rule may read input.request; when none does, the caller need not
	// build it. readsDocument: some rule may read input other than input.request.
	readsRequest, readsDocument bool
}

// ReadsRequest reports whether an evaluation may read input.request. When it is false the
// program's result does not depend on the request document, and an input without it (or
// with an empty one) decides the same.
func (p *Program) ReadsRequest() bool { return p.readsRequest }

// ReadsDocument reports whether an evaluation given a Request may read anything of the
// input document. When it is false the document may be nil: the program reads input
// through input.request alone.
func (p *Program) ReadsDocument() bool { return p.readsDocument }

// ruleSet is every definition of one rule (or function) of some package.
type ruleSet struct {
	path  ast.Ref   // data.pkg.rule
	name  string    // path as a string
	key   *ast.Term // the rule's key in its package's document
	kind  ruleKind
	defs  []*definition // in topdown's order; else branches hang off their definition
	dflt  *ast.Term
	loc   *ast.Location
	early bool // stop at the first definition that yields a value (see earlyExit)
	// konst is the value of a complete rule whose one definition is a constant without a
	// condition (events := {"push", "ping"}): its value, with nothing to evaluate.
	konst    *ast.Term
	arity    int         // functions: the number of arguments
	children []childRule // kindGroup: a complete rule per constant key, by key
	// index is topdown's rule index for the rule; byRule finds a definition (else branches
	// included) by the rule it was compiled from. They serve only to redo an evaluation
	// that failed the way topdown does it (see retry).
	index  ast.RuleIndex
	byRule map[*ast.Rule]*definition
	// indexAlways: the rule index may rule out a definition that would hold (it compares
	// the keys of base document references as values), so every evaluation asks it.
	indexAlways bool

	// Compilation state.
	raw      []*ast.Rule
	compiled bool
	bad      error
}

// childRule is one constant key of a rule made of constant keys (labels.event := …).
type childRule struct {
	key *ast.Term
	idx int
}

// definition is one rule definition: a body and the head term read after each solution.
type definition struct {
	body  []step
	nvars int
	head  termFn // the value; a set rule's member
	key   termFn // partial object rules: the key
	args  []argSpec
	elses []*definition
	det   bool // no step enumerates: at most one solution, found without continuations
	loc   *ast.Location
	// fields: a complete rule whose value is an object literal with constant keys
	// (dedupe := {"key": …, "ttl": "1h"}) also has its values compiled one by one, so that
	// EvalRules can hand the object over unbuilt (Rules.Fields).
	fields *objectFields
	// konst: a complete rule's definition whose body is `true` and whose value is a
	// constant, that value (see ruleSet.konst).
	konst *ast.Term
}

// objectFields are such a rule's body without the literal, and the literal's constant keys
// and its values' functions.
type objectFields struct {
	body  []step
	nvars int
	det   bool
	keys  []*ast.Term
	vals  []termFn
}

// argSpec is how one argument of a function definition meets the call's operand: bound to a
// variable's slot, compared with a variable bound by an earlier argument, or compared with a
// constant.
type argSpec struct {
	slot, same int
	want       *ast.Term
}

// bind binds a call's operands to the definition's arguments; false when they do not match.
func (d *definition) bind(f frame, args []*ast.Term) bool {
	for i, a := range d.args {
		switch {
		case a.slot >= 0:
			f[a.slot] = args[i]
		case a.same >= 0:
			if !f[a.same].Equal(args[i]) {
				return false
			}
		default:
			if !a.want.Equal(args[i]) {
				return false
			}
		}
	}
	return true
}

// step is one compiled expression. Exactly one of det and iter is set: det for expressions
// with at most one solution, iter for those that enumerate. iter runs the rest of its body
// (evalBody(r, f, rest, k)) once per value it binds: handed the rest, not a continuation
// made for it, an enumeration allocates no closure to carry on.
type step struct {
	det  func(r *run, f frame) (bool, error)
	iter func(r *run, f frame, rest []step, k func() error) error
}

// termFn evaluates a term; nil with a nil error means undefined.
type termFn func(r *run, f frame) (*ast.Term, error)

type frame []*ast.Term

type ruleState struct {
	done bool
	busy bool
	val  *ast.Term
	err  error
}

// run is one evaluation's state. Runs are pooled: their slabs make an evaluation cost few
// allocations beyond the values it builds.
type run struct {
	p         *Program
	input     *ast.Term
	inputTerm ast.Term // input's term, so wrapping the input costs no allocation
	// req is input.request when the caller gave it apart (EvalRules); reqTerm and whole are
	// its object and the whole input with it, once something needed them.
	req            Request
	reqTerm, whole *ast.Term
	inputOwn       *ast.Term // the input as a value that escapes the run (inputValue)
	bctx           topdown.BuiltinContext
	state          []ruleState
	memo           []memoEntry // the function calls made so far
	// memoIdx finds memo entries by memoHash once there are more than memoScan.
	memoIdx map[int][]int32
	slab    []*ast.Term // variable slots; frames are carved from it and live until the run ends
	args    []*ast.Term // a built-in's operands; built-ins do not call back into the run
	res     *ast.Term   // a built-in's result
	setRes  func(*ast.Term) error
	ticks   uint32 // iteration steps, for polling the deadline
	// addrText and addr are the IP address net.cidr_contains parsed last (addrOK: one was),
	// tried against the next CIDR of an allowlist without parsing it again.
	addrText string
	addr     netip.Addr
	addrOK   bool
	// iters and binds are the continuations of enumerating definitions (evalDefIter) and
	// bindings (bindEach).
	iters depthPool[defIter]
	binds depthPool[binder]
}

// depthPool holds a pooled run's continuations of one kind, one per nesting depth: made the
// first time the run reaches a depth, reused by every later evaluation.
type depthPool[T any] struct {
	items []*T
	depth int // in use
}

// push returns the continuation of the next depth, made by fresh the first time.
func (p *depthPool[T]) push(fresh func() *T) *T {
	if p.depth == len(p.items) {
		p.items = append(p.items, fresh())
	}
	t := p.items[p.depth]
	p.depth++
	return t
}

// pop ends the deepest continuation's use.
func (p *depthPool[T]) pop() { p.depth-- }

// reset hands every continuation an evaluation that panicked left in use to clear.
func (p *depthPool[T]) reset(clear func(*T)) {
	for _, t := range p.items[:p.depth] {
		clear(t)
	}
	p.depth = 0
}

// tickPoll is how many iteration steps pass between two looks at the deadline.
const tickPoll = 256

// tick counts one step of an enumeration and, every tickPoll steps, fails the evaluation
// once the caller's deadline has passed or it was cancelled, as topdown does: iteration is
// the only way a compiled policy's work grows with its input.
func (r *run) tick() error {
	r.ticks++
	if r.ticks%tickPoll != 0 {
		return nil
	}
	cancelled := false
	if c := r.bctx.Cancel; c != nil {
		cancelled = c.Cancelled()
	} else if ctx := r.bctx.Context; ctx != nil {
		cancelled = ctx.Err() != nil
	}
	if cancelled {
		return &topdown.Error{Code: topdown.CancelErr, Message: "caller cancelled query execution"}
	}
	return nil
}

var runPool = sync.Pool{New: func() any {
	r := &run{}
	r.setRes = func(t *ast.Term) error { r.res = t; return nil }
	return r
}}

// maxPooledSlab bounds the slab a pooled run keeps (in slots).
const maxPooledSlab = 4096

// frame returns n fresh variable slots.
func (r *run) frame(n int) frame {
	if len(r.slab)+n > cap(r.slab) {
		// The frames carved so far keep the old slab. Doubling makes the pooled run's slab,
		// after a few evaluations, one that fits a whole evaluation.
		r.slab = make([]*ast.Term, 0, max(64, n, 2*cap(r.slab)))
	}
	f := r.slab[len(r.slab) : len(r.slab)+n : len(r.slab)+n]
	r.slab = r.slab[:len(r.slab)+n]
	return frame(f)
}

// memoEntry is one function call's result (nil: undefined). Its arguments live in the slab.
type memoEntry struct {
	fn   int
	args []*ast.Term
	val  *ast.Term
	err  error
}

// errStop ends an enumeration early once its result is settled.
var errStop = errors.New("fastpath: stop")

// Eval evaluates the program on input (nil when there is none). The result is the value of
// the program's only rule (nil when it is undefined), or else an object of every rule of
// the package that is defined. req, when not nil, is input.request (input's own is then
// ignored; see EvalRules). cancel, when not nil, is handed to the built-ins that poll.
func (p *Program) Eval(ctx context.Context, input ast.Value, req Request, cancel topdown.Cancel) (*ast.Term, error) {
	if p.only >= 0 {
		r, err := p.start(ctx, input, req, cancel)
		if err != nil {
			return nil, err
		}
		defer r.release()
		return r.rule(p.only)
	}
	var rules Rules
	if err := p.EvalRules(ctx, input, req, cancel, &rules); err != nil {
		return nil, err
	}
	obj := ast.NewObjectWithCapacity(len(rules.keys))
	for i, k := range rules.keys {
		obj.Insert(k, rules.value(i))
	}
	return ast.NewTerm(obj), nil
}

// Rules is what EvalRules found: the value of every defined rule of the queried package, by
// key. The zero value is ready to use; reusing one keeps its storage.
//
// A rule whose value is an object literal with constant keys is kept unbuilt: its fields
// are read with Fields, and Get builds the object only when asked for the value whole. A
// decision rule such as dedupe := {"key": …, "ttl": "1h"} would otherwise cost an object,
// its map and an element per key on every evaluation, to be read field by field.
type Rules struct {
	keys, vals []*ast.Term
	unbuilt    []int    // per rule: index+1 into objs, 0 when vals holds the value
	objs       []Fields // the unbuilt objects
	fieldVals  []*ast.Term
}

// Fields are the keys and values of an object rule kept unbuilt, valid until Clear.
type Fields struct {
	keys, vals []*ast.Term
}

// Len returns how many fields the object has.
func (f *Fields) Len() int { return len(f.keys) }

// At returns field i's key and value (0 <= i < Len).
func (f *Fields) At(i int) (key, val *ast.Term) { return f.keys[i], f.vals[i] }

// Clear drops the values found, keeping the storage: a pooled Rules then holds none of an
// evaluation's values.
func (rs *Rules) Clear() {
	clear(rs.keys)
	clear(rs.vals)
	clear(rs.objs)
	clear(rs.fieldVals)
	rs.keys, rs.vals, rs.unbuilt = rs.keys[:0], rs.vals[:0], rs.unbuilt[:0]
	rs.objs, rs.fieldVals = rs.objs[:0], rs.fieldVals[:0]
}

// Len returns how many rules are defined. Name, At and FieldsAt read rule i (0 <= i < Len)
// by position: a caller after several rules reads each once, without a search by name.
func (rs *Rules) Len() int { return len(rs.keys) }

// Name returns the name of rule i.
func (rs *Rules) Name(i int) string { return string(rs.keys[i].Value.(ast.String)) }

// At returns the value of rule i, building it when it is an object kept unbuilt (once).
func (rs *Rules) At(i int) *ast.Term { return rs.value(i) }

// FieldsAt returns the fields of rule i when it is an object kept unbuilt, nil otherwise
// (another value, or an object built already: read it with At).
func (rs *Rules) FieldsAt(i int) *Fields {
	if rs.unbuilt[i] > 0 && rs.vals[i] == nil {
		return &rs.objs[rs.unbuilt[i]-1]
	}
	return nil
}

// value is rule i's value, building an unbuilt object (once).
func (rs *Rules) value(i int) *ast.Term {
	if rs.vals[i] == nil && rs.unbuilt[i] > 0 {
		f := &rs.objs[rs.unbuilt[i]-1]
		obj := ast.NewObjectWithCapacity(len(f.keys))
		for j, k := range f.keys {
			obj.Insert(k, f.vals[j])
		}
		rs.vals[i] = ast.NewTerm(obj)
	}
	return rs.vals[i]
}

// evalFields evaluates rule set rs, when it is an object literal with constant keys, into
// out unbuilt. ok false means it did not: the rule is not of that shape, already evaluated,
// or undefined or failing here; the caller then evaluates it the ordinary way, which gives
// the same value or error (evaluation has no side effects).
func (r *run) evalFields(i int, d *definition, out *Rules) bool {
	if d == nil || r.state[i].done {
		return false
	}
	of := d.fields
	f := r.frame(of.nvars)
	if ok, err := evalDet(r, f, of.body); err != nil || !ok {
		return false
	}
	start := len(out.fieldVals)
	for _, fn := range of.vals {
		v, err := fn(r, f)
		if v == nil || err != nil {
			clear(out.fieldVals[start:])
			out.fieldVals = out.fieldVals[:start]
			return false
		}
		out.fieldVals = append(out.fieldVals, v)
	}
	out.objs = append(out.objs, Fields{keys: of.keys, vals: out.fieldVals[start:len(out.fieldVals):len(out.fieldVals)]})
	out.keys = append(out.keys, r.p.rules[i].key)
	out.vals = append(out.vals, nil)
	out.unbuilt = append(out.unbuilt, len(out.objs))
	return true
}

// fieldsDef returns the definition of rule set rs whose value evalFields may hand over
// unbuilt: the one definition of a complete rule, without else branches, whose value is an
// object literal with constant keys and whose body does not enumerate; nil for any other.
func fieldsDef(rs *ruleSet) *definition {
	// A rule whose data keys a variable reaches asks topdown's rule index first (retry): it
	// is evaluated as a rule, not handed over.
	if rs.kind != kindComplete || len(rs.defs) != 1 || rs.indexAlways {
		return nil
	}
	d := rs.defs[0]
	if of := d.fields; of == nil || !of.det || len(d.elses) > 0 || len(d.args) > 0 {
		return nil
	}
	return d
}

// EvalRules evaluates the program's package document into out, without building it as an
// object: Eval's result, for callers that read a few rules by name. The program must not
// have been compiled with Only. When req is not nil it is input.request, and input's own
// "request" (if any) is ignored.
func (p *Program) EvalRules(ctx context.Context, input ast.Value, req Request, cancel topdown.Cancel, out *Rules) error {
	out.Clear()
	if p.only >= 0 {
		return errors.New("fastpath: EvalRules on a program compiled for one rule")
	}
	r, err := p.start(ctx, input, req, cancel)
	if err != nil {
		return err
	}
	defer r.release()
	// Every rule of the package is evaluated, as topdown does for the package document: an
	// error in a helper rule fails the evaluation even when no decision rule reads it. Rules
	// of other packages are evaluated only as far as these refer to them.
	for j, i := range p.report {
		if r.evalFields(i, p.fields[j], out) {
			continue
		}
		v, err := r.rule(i)
		if err != nil {
			return err
		}
		if v != nil {
			out.keys = append(out.keys, p.rules[i].key)
			out.vals = append(out.vals, v)
			out.unbuilt = append(out.unbuilt, 0)
		}
	}
	return nil
}

// start readies a pooled run for one evaluation.
func (p *Program) start(ctx context.Context, input ast.Value, req Request, cancel topdown.Cancel) (*run, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := runPool.Get().(*run)
	r.p = p
	if cap(r.state) < len(p.rules) {
		r.state = make([]ruleState, len(p.rules))
	}
	r.state = r.state[:len(p.rules)]
	if input != nil {
		r.inputTerm.Value = input
		r.input = &r.inputTerm
	}
	r.req = req
	r.bctx = topdown.BuiltinContext{Context: ctx, Cancel: cancel, Capabilities: p.caps}
	return r, nil
}

// Only reports whether the program's result is one rule's value (compiled with Only).
func (p *Program) Only() bool { return p.only >= 0 }

// release returns the run to the pool, holding no value of this evaluation.
func (r *run) release() {
	clear(r.state)
	// Frames are carved below len(r.slab) only: past it the slots are zero already.
	clear(r.slab)
	r.slab = r.slab[:0]
	clear(r.args[:cap(r.args)])
	clear(r.memo)
	r.memo, r.memoIdx = r.memo[:0], nil
	if cap(r.slab) > maxPooledSlab { // one evaluation's outsized needs stay with it
		r.slab = nil
	}
	if cap(r.memo) > 4*memoScan {
		r.memo = nil
	}
	r.p, r.input, r.res, r.bctx, r.ticks = nil, nil, nil, topdown.BuiltinContext{}, 0
	r.inputTerm = ast.Term{}
	r.iters.reset((*defIter).clear) // an evaluation that panicked left them in use
	r.binds.reset((*binder).clear)
	r.req, r.reqTerm, r.whole, r.inputOwn = nil, nil, nil, nil
	r.addrText, r.addr, r.addrOK = "", netip.Addr{}, false // the text may be a request's bytes
	runPool.Put(r)
}

// rule returns the value of rule set i, evaluating it once per run.
func (r *run) rule(i int) (*ast.Term, error) {
	st := &r.state[i]
	if st.done {
		return st.val, st.err
	}
	if st.busy { // the compiler rejects recursion; this guards the invariant
		return nil, errors.New("fastpath: recursive rule " + r.p.rules[i].name)
	}
	rs := r.p.rules[i]
	if rs.konst != nil {
		*st = ruleState{done: true, val: rs.konst}
		return rs.konst, nil
	}
	st.busy = true
	if rs.indexAlways && rs.index != nil {
		v, err := r.retry(rs, nil)
		*st = ruleState{done: true, val: v, err: err}
		return v, err
	}
	var v *ast.Term
	var err error
	switch rs.kind {
	case kindSet:
		v, err = r.evalSet(rs, rs.defs)
	case kindObject:
		v, err = r.evalObject(rs, rs.defs)
	case kindGroup:
		v, err = r.evalGroup(rs)
	default:
		v, err = r.evalValue(rs, nil)
	}
	if err != nil && rs.index != nil {
		v, err = r.retry(rs, nil)
	}
	*st = ruleState{done: true, val: v, err: err}
	return v, err
}

// memoScan is how many calls the memo scans; past it, calls are found by hash. A handful of
// distinct calls is typical, and a scan beats a map there; a function called once per
// element of a large input must not cost a scan per call.
const memoScan = 16

// call returns the value of function fi for args (nil: undefined), evaluating it once per
// run and arguments, as topdown caches it.
func (r *run) call(fi int, args []*ast.Term) (*ast.Term, error) {
	if len(r.memo) <= memoScan {
		for i := range r.memo {
			if m := &r.memo[i]; m.fn == fi && sameArgs(m.args, args) {
				return m.val, m.err
			}
		}
	} else {
		if r.memoIdx == nil {
			r.memoIdx = make(map[int][]int32, 2*len(r.memo))
			for i := range r.memo {
				k := memoHash(r.memo[i].fn, r.memo[i].args)
				r.memoIdx[k] = append(r.memoIdx[k], int32(i))
			}
		}
		for _, i := range r.memoIdx[memoHash(fi, args)] {
			if m := &r.memo[i]; m.fn == fi && sameArgs(m.args, args) {
				return m.val, m.err
			}
		}
	}
	rs := r.p.rules[fi]
	kept := r.frame(len(args)) // args may be the caller's stack buffer: keep a copy
	copy(kept, args)
	var v *ast.Term
	var err error
	if rs.indexAlways && rs.index != nil {
		v, err = r.retry(rs, kept)
	} else if v, err = r.evalValue(rs, args); err != nil && rs.index != nil {
		v, err = r.retry(rs, kept)
	}
	r.memo = append(r.memo, memoEntry{fn: fi, args: kept, val: v, err: err})
	if r.memoIdx != nil {
		h := memoHash(fi, kept)
		r.memoIdx[h] = append(r.memoIdx[h], int32(len(r.memo)-1))
	}
	return v, err
}

func memoHash(fi int, args []*ast.Term) int {
	h := fi
	for _, a := range args {
		h = h*31 + a.Hash()
	}
	return h
}

// sameArgs is how topdown's function cache finds arguments: equal and of equal hash. Equal
// values may hash apart (numbers past float64's range hash their text: 1e400 and 10e399),
// and topdown then evaluates the function again, which may give another result.
func sameArgs(a, b []*ast.Term) bool {
	for i := range a {
		if a[i] != b[i] && (!a[i].Equal(b[i]) || a[i].Hash() != b[i].Hash()) {
			return false
		}
	}
	return true
}

// evalValue evaluates a complete rule, or a function for args, as topdown does
// (evalVirtualComplete.evalValue, evalFunc.evalValue): each definition in order, its else
// branches in order when it yields nothing, every value compared with the first; the default
// when none yields one. With early exit, the first value settles it.
func (r *run) evalValue(rs *ruleSet, args []*ast.Term) (*ast.Term, error) {
	v, err := r.values(rs, rs.defs, nil, args, rs.early)
	if v == nil && err == nil {
		return rs.dflt, nil
	}
	return v, err
}

// values evaluates defs in order, each followed by its else branches while it yields
// nothing (elses[i], or the definition's own when elses is nil), every value compared with
// the first; it returns that value, nil when none yields one. With early, the first value
// settles it.
func (r *run) values(rs *ruleSet, defs []*definition, elses [][]*definition, args []*ast.Term, early bool) (*ast.Term, error) {
	var prev *ast.Term
	for i, d := range defs {
		es := d.elses
		if elses != nil {
			es = elses[i]
		}
		v, err := r.evalDef(rs, d, args, prev, early)
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if v != nil {
				break
			}
			if v, err = r.evalDef(rs, e, args, prev, early); err != nil {
				return nil, err
			}
		}
		if v != nil {
			if prev == nil {
				prev = v // topdown keeps the first of equal values (1 before 1.0)
			}
			if early {
				break
			}
		}
	}
	return prev, nil
}

// evalDef evaluates one definition: the value it yields (nil: none), an error when one of its
// values differs from prev or another of its own.
func (r *run) evalDef(rs *ruleSet, d *definition, args []*ast.Term, prev *ast.Term, early bool) (*ast.Term, error) {
	if !d.det {
		return r.evalDefIter(rs, d, args, prev, early)
	}
	f := r.frame(d.nvars)
	if !d.bind(f, args) {
		return nil, nil
	}
	ok, err := evalDet(r, f, d.body)
	if err != nil || !ok {
		return nil, err
	}
	v, err := d.head(r, f)
	if v == nil || err != nil {
		return nil, err
	}
	if prev != nil && !prev.Equal(v) {
		return nil, conflict(rs, d)
	}
	return v, nil
}

// evalDefIter is evalDef for a body that enumerates. Its continuation, which compares and
// keeps each value the body yields, is a defIter of the run's, one per nesting depth, made
// the first time a pooled run reaches that depth: not a closure per evaluation.
func (r *run) evalDefIter(rs *ruleSet, d *definition, args []*ast.Term, prev *ast.Term, early bool) (*ast.Term, error) {
	f := r.frame(d.nvars)
	if !d.bind(f, args) {
		return nil, nil
	}
	st := r.iters.push(newDefIter)
	st.r, st.f, st.rs, st.d, st.early = r, f, rs, d, early
	st.first, st.last = prev, nil // the first value, this definition's last
	err := evalBody(r, f, d.body, st.k)
	r.iters.pop()
	v := st.last
	st.clear() // no value of this evaluation stays in the pooled run
	if err != nil && err != errStop {
		return nil, err
	}
	return v, nil
}

// bindEach binds slot of f to each value the reference c reaches (x = input.m[_], some x in
// xs) and evaluates the rest of the body with each. Its continuation is a binder of the
// run's, one per nesting depth, made the first time a pooled run reaches that depth: not a
// closure per evaluation.
func (r *run) bindEach(c *compiledRef, f frame, slot int, rest []step, k func() error) error {
	b := r.binds.push(newBinder)
	b.r, b.f, b.slot, b.rest, b.then = r, f, slot, rest, k
	err := c.walk(r, f, b.k)
	r.binds.pop()
	b.clear() // no value of this evaluation stays in the pooled run
	return err
}

func newBinder() *binder {
	b := &binder{}
	b.k = b.next
	return b
}

// clear drops the evaluation's values, keeping k.
func (b *binder) clear() { *b = binder{k: b.k} }

// binder is an enumerating binding in progress (bindEach); k is its next method, bound once.
type binder struct {
	r    *run
	f    frame
	slot int
	rest []step
	then func() error
	k    func(*ast.Term) error
}

// next binds one value and evaluates the rest of the body with it.
func (b *binder) next(v *ast.Term) error {
	b.f[b.slot] = v
	return evalBody(b.r, b.f, b.rest, b.then)
}

// defIter is an enumerating definition's evaluation in progress (evalDefIter); k is its
// next method, bound once.
type defIter struct {
	r           *run
	f           frame
	rs          *ruleSet
	d           *definition
	early       bool
	first, last *ast.Term
	k           func() error
}

func newDefIter() *defIter {
	st := &defIter{}
	st.k = st.next
	return st
}

// clear drops the evaluation's values, keeping k.
func (st *defIter) clear() { *st = defIter{k: st.k} }

// next takes the value of the definition's head for one solution of its body.
func (st *defIter) next() error {
	v, err := st.d.head(st.r, st.f)
	if v == nil || err != nil {
		return err
	}
	if st.first != nil && !st.first.Equal(v) {
		return conflict(st.rs, st.d)
	}
	// Equal values may be written differently (1, 1.0): topdown keeps the first.
	if st.first == nil {
		st.first = v
	}
	if st.last == nil {
		st.last = v
	}
	if st.early {
		return errStop
	}
	return nil
}

// retry evaluates a rule (or a function for args) whose evaluation failed again, the way
// topdown does: only the definitions its rule index returns as candidates for this input
// (and arguments), with early exit as the index decides over those candidates.
//
// The compiled evaluation considers every definition, with early exit only where all of them
// agree on one constant. That gives topdown's value whenever it succeeds: a definition that
// is no candidate cannot yield a value, and stopping early among candidates that agree
// changes no value. What it can change is whether an error is raised, by a definition that
// is no candidate before it fails, or by one past the point where topdown stops; so an error
// is checked here, at no cost to evaluations that succeed.
func (r *run) retry(rs *ruleSet, args []*ast.Term) (*ast.Term, error) {
	ir, err := rs.index.Lookup(&resolver{r: r, args: args})
	if err != nil {
		return nil, err
	}
	defer ast.IndexResultPool.Put(ir)
	if ir.Empty() {
		switch rs.kind { // a partial rule with no candidate is empty, not undefined
		case kindSet:
			return ast.NewTerm(ast.NewSet()), nil
		case kindObject:
			return ast.NewTerm(ast.NewObject()), nil
		}
		return nil, nil
	}
	defs, err := rs.definitions(ir.Rules)
	if err != nil {
		return nil, err
	}
	switch rs.kind {
	case kindSet:
		return r.evalSet(rs, defs)
	case kindObject:
		return r.evalObject(rs, defs)
	}
	elses := make([][]*definition, len(defs))
	for i, rule := range ir.Rules {
		if elses[i], err = rs.definitions(ir.Else[rule]); err != nil {
			return nil, err
		}
	}
	v, err := r.values(rs, defs, elses, args, ir.EarlyExit)
	if v == nil && err == nil && ir.Default != nil {
		return rs.dflt, nil
	}
	return v, err
}

// definitions returns the definitions compiled from rules (the rule index's answer).
func (rs *ruleSet) definitions(rules []*ast.Rule) ([]*definition, error) {
	defs := make([]*definition, 0, len(rules))
	for _, rule := range rules {
		d := rs.byRule[rule]
		if d == nil {
			return nil, errors.New("fastpath: rule index of " + rs.name + " returned an unknown rule")
		}
		defs = append(defs, d)
	}
	return defs, nil
}

// resolver answers the rule index's questions as topdown's does (evalResolver): the values of
// input, of a function's arguments, and of the base document.
type resolver struct {
	r    *run
	args []*ast.Term
}

func (x *resolver) Resolve(ref ast.Ref) (ast.Value, error) {
	switch {
	case ref[0].Equal(ast.FunctionArgRootDocument):
		if n, ok := ref[1].Value.(ast.Number); ok {
			if i, ok := n.Int(); ok && i >= 0 && i < len(x.args) {
				return x.args[i].Value, nil
			}
		}
		return nil, ast.UnknownValueErr{}
	case ref[0].Equal(ast.InputRootDocument):
		in := x.r.inputDoc()
		if in == nil {
			return nil, nil
		}
		v, err := in.Value.Find(ref[1:])
		if err != nil {
			return nil, nil
		}
		return v, nil
	case ref[0].Equal(ast.DefaultRootDocument):
		if x.r.p.data == nil {
			// The program reads no base document (or the package was refused): whatever the
			// index asks about is kept as a candidate.
			return nil, ast.UnknownValueErr{}
		}
		v := ast.NewTerm(x.r.p.data)
		for _, k := range ref[1:] {
			if v = storageIndex(v, k); v == nil {
				return nil, nil
			}
		}
		return v.Value, nil
	}
	return nil, errors.New("fastpath: illegal reference " + ref.String())
}

// conflict is topdown's error for two values of one complete rule or function call (without
// the list of values topdown appends to the message).
func conflict(rs *ruleSet, d *definition) error {
	msg := "rule " + rs.name + " produced conflicting values"
	if rs.kind == kindFunc {
		msg = "function " + rs.name + " produced conflicting values for the same inputs"
	}
	return &topdown.Error{Code: topdown.ConflictErr, Location: d.loc, Message: msg}
}

// insertOnce adds k: v to obj; a key already there with another value is topdown's
// conflict error.
func insertOnce(obj ast.Object, k, v *ast.Term, loc *ast.Location) error {
	if cur := obj.Get(k); cur != nil {
		if !cur.Equal(v) {
			return keyConflict(loc)
		}
		return nil
	}
	obj.Insert(k, v)
	return nil
}

// insertLast is insertOnce for an object comprehension: of equal values (1, 1.0) the last
// stays, as topdown inserts each.
func insertLast(obj ast.Object, k, v *ast.Term, loc *ast.Location) error {
	if cur := obj.Get(k); cur != nil && !cur.Equal(v) {
		return keyConflict(loc)
	}
	obj.Insert(k, v)
	return nil
}

// keyConflict is topdown's error for two values of one key of an object.
func keyConflict(loc *ast.Location) error {
	return &topdown.Error{Code: topdown.ConflictErr, Location: loc, Message: "object keys must be unique"}
}

func (r *run) evalSet(rs *ruleSet, defs []*definition) (*ast.Term, error) {
	set := ast.NewSet()
	for _, d := range defs {
		f := r.frame(d.nvars)
		err := evalBody(r, f, d.body, func() error {
			v, err := d.head(r, f)
			if err != nil || v == nil {
				return err
			}
			set.Add(v)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return ast.NewTerm(set), nil
}

// evalObject evaluates a partial object rule: every definition's keys and values; one key
// with two values is an error.
func (r *run) evalObject(rs *ruleSet, defs []*definition) (*ast.Term, error) {
	obj := ast.NewObject()
	for _, d := range defs {
		f := r.frame(d.nvars)
		err := evalBody(r, f, d.body, func() error {
			k, err := d.key(r, f)
			if k == nil || err != nil {
				return err
			}
			v, err := d.head(r, f)
			if v == nil || err != nil {
				return err
			}
			return insertOnce(obj, k, v, d.loc)
		})
		if err != nil {
			return nil, err
		}
	}
	return ast.NewTerm(obj), nil
}

// evalGroup evaluates a rule made of constant keys: the object of those whose rule is
// defined, empty when none is.
func (r *run) evalGroup(rs *ruleSet) (*ast.Term, error) {
	obj := ast.NewObjectWithCapacity(len(rs.children))
	for _, c := range rs.children {
		v, err := r.rule(c.idx)
		if err != nil {
			return nil, err
		}
		if v != nil {
			obj.Insert(c.key, v)
		}
	}
	return ast.NewTerm(obj), nil
}

// evalBody runs body and calls k once per solution. Deterministic steps run in a loop; an
// enumerating step runs the steps after it itself.
func evalBody(r *run, f frame, body []step, k func() error) error {
	for i, s := range body {
		if s.iter != nil {
			return s.iter(r, f, body[i+1:], k)
		}
		ok, err := s.det(r, f)
		if err != nil || !ok {
			return err
		}
	}
	return k()
}

// evalDet runs a body none of whose steps enumerates.
func evalDet(r *run, f frame, body []step) (bool, error) {
	for _, s := range body {
		ok, err := s.det(r, f)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// index looks key up in a collection the way a reference does: an object's value, an
// array's element, a set's member. Anything else is undefined.
func index(coll, key *ast.Term) *ast.Term {
	if coll == nil || key == nil {
		return nil
	}
	switch v := coll.Value.(type) {
	case ast.Object:
		return v.Get(key)
	case *ast.Array:
		return v.Get(key)
	case ast.Set:
		if v.Contains(key) {
			return key
		}
	}
	return nil
}

// each calls fn with every key and value of a collection; anything else has none.
func each(coll *ast.Term, fn func(k, v *ast.Term) error) error {
	switch v := coll.Value.(type) {
	case ast.Object:
		return v.Iter(fn)
	case *ast.Array:
		for i := 0; i < v.Len(); i++ {
			if err := fn(ast.InternedTerm(i), v.Elem(i)); err != nil {
				return err
			}
		}
	case ast.Set:
		return v.Iter(func(e *ast.Term) error { return fn(e, e) })
	}
	return nil
}

func isFalse(t *ast.Term) bool {
	b, ok := t.Value.(ast.Boolean)
	return ok && !bool(b)
}
