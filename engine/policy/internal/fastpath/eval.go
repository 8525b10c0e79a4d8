package fastpath

import (
	"context"
	"errors"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Program is one package's compiled decision. Safe for concurrent use: all per-evaluation
// state lives in a run.
type Program struct {
	rules  []*ruleSet
	report []int // the rules that make up the result document, in name order
	only   int   // ≥ 0: the result is this rule's value alone
}

// ruleSet is every definition of one rule of the package.
type ruleSet struct {
	name  string
	key   *ast.Term
	multi bool // partial set rule: the value is the set of every definition's keys
	defs  []*definition
	dflt  *ast.Term
	loc   *ast.Location
}

// definition is one rule definition: a body and the head term read after each solution.
type definition struct {
	body      []step
	nvars     int
	head      termFn
	constHead bool // one solution settles the definition's value
	det       bool // no step enumerates: at most one solution, found without continuations
}

// step is one compiled expression. Exactly one of det and iter is set: det for expressions
// with at most one solution, iter for those that enumerate.
type step struct {
	det  func(r *run, f frame) (bool, error)
	iter func(r *run, f frame, k func() error) error
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
	p      *Program
	input  *ast.Term
	bctx   topdown.BuiltinContext
	state  []ruleState
	slab   []*ast.Term // variable slots; frames are carved from it and live until the run ends
	args   []*ast.Term // a built-in's operands; built-ins do not call back into the run
	res    *ast.Term   // a built-in's result
	setRes func(*ast.Term) error
}

var runPool = sync.Pool{New: func() any {
	r := &run{}
	r.setRes = func(t *ast.Term) error { r.res = t; return nil }
	return r
}}

// frame returns n fresh variable slots.
func (r *run) frame(n int) frame {
	if len(r.slab)+n > cap(r.slab) {
		r.slab = make([]*ast.Term, 0, max(64, n))
	}
	f := r.slab[len(r.slab) : len(r.slab)+n : len(r.slab)+n]
	r.slab = r.slab[:len(r.slab)+n]
	return frame(f)
}

// errStop ends an enumeration early once its result is settled.
var errStop = errors.New("fastpath: stop")

// Eval evaluates the program on input (nil when there is none). The result is the value of
// the program's only rule (nil when it is undefined), or else an object of every rule of
// the package that is defined. cancel, when not nil, is handed to the built-ins that poll.
func (p *Program) Eval(ctx context.Context, input ast.Value, cancel topdown.Cancel) (*ast.Term, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := runPool.Get().(*run)
	defer r.release()
	r.p = p
	if cap(r.state) < len(p.rules) {
		r.state = make([]ruleState, len(p.rules))
	}
	r.state = r.state[:len(p.rules)]
	if input != nil {
		r.input = ast.NewTerm(input)
	}
	r.bctx = topdown.BuiltinContext{Context: ctx, Cancel: cancel}
	if p.only >= 0 {
		return r.rule(p.only)
	}
	// Every rule is evaluated, as topdown does for the package document: an error in a
	// helper rule fails the evaluation even when no decision rule reads it.
	for i := range p.rules {
		if _, err := r.rule(i); err != nil {
			return nil, err
		}
	}
	obj := ast.NewObjectWithCapacity(len(p.report))
	for _, i := range p.report {
		if v := r.state[i].val; v != nil {
			obj.Insert(p.rules[i].key, v)
		}
	}
	return ast.NewTerm(obj), nil
}

// release returns the run to the pool, holding no value of this evaluation.
func (r *run) release() {
	clear(r.state)
	clear(r.slab[:cap(r.slab)])
	r.slab = r.slab[:0]
	clear(r.args[:cap(r.args)])
	r.p, r.input, r.res, r.bctx = nil, nil, nil, topdown.BuiltinContext{}
	runPool.Put(r)
}

// rule returns the value of rule i, evaluating it once per run.
func (r *run) rule(i int) (*ast.Term, error) {
	st := &r.state[i]
	if st.done {
		return st.val, st.err
	}
	if st.busy { // the compiler rejects recursion; this guards the invariant
		return nil, errors.New("fastpath: recursive rule " + r.p.rules[i].name)
	}
	st.busy = true
	rs := r.p.rules[i]
	var v *ast.Term
	var err error
	if rs.multi {
		v, err = r.evalSet(rs)
	} else {
		v, err = r.evalComplete(rs)
	}
	*st = ruleState{done: true, val: v, err: err}
	return v, err
}

func (r *run) evalComplete(rs *ruleSet) (*ast.Term, error) {
	var result *ast.Term
	for _, d := range rs.defs {
		f := r.frame(d.nvars)
		if d.det {
			ok, err := evalDet(r, f, d.body)
			if err != nil {
				return nil, err
			}
			if !ok {
				continue
			}
			v, err := d.head(r, f)
			if err != nil {
				return nil, err
			}
			if v == nil {
				continue
			}
			if result != nil && !result.Equal(v) {
				return nil, conflict(rs)
			}
			result = v
			continue
		}
		err := evalBody(r, f, d.body, func() error {
			v, err := d.head(r, f)
			if err != nil || v == nil {
				return err
			}
			if result != nil && !result.Equal(v) {
				return conflict(rs)
			}
			result = v
			if d.constHead {
				return errStop
			}
			return nil
		})
		if err != nil && err != errStop {
			return nil, err
		}
	}
	if result == nil {
		result = rs.dflt
	}
	return result, nil
}

func conflict(rs *ruleSet) error {
	return &topdown.Error{Code: topdown.ConflictErr, Location: rs.loc, Message: "complete rules must not produce multiple outputs"}
}

func (r *run) evalSet(rs *ruleSet) (*ast.Term, error) {
	set := ast.NewSet()
	for _, d := range rs.defs {
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

// evalBody runs body and calls k once per solution. Deterministic steps run in a loop; only
// an enumerating step costs a continuation.
func evalBody(r *run, f frame, body []step, k func() error) error {
	for i, s := range body {
		if s.iter != nil {
			rest := body[i+1:]
			return s.iter(r, f, func() error { return evalBody(r, f, rest, k) })
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
