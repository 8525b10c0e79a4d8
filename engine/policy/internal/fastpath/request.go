package fastpath

import (
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Request is input.request as the caller holds it, for an evaluation that need not build
// the whole object (EvalRules with a Request). Each method answers what Object holds at
// that place: Field(k) is Object()[k] and Header(n) is Object()["headers"][n], nil where the
// object holds nothing. The program calls Object only where a rule uses input.request (or
// its headers, or the whole input) as a value; an implementation builds it then, once.
type Request interface {
	Object() ast.Object
	Field(key string) *ast.Term
	Header(name string) *ast.Term
}

// RequestFunc is a built-in that reads input.request from the Request (args[i] is nil in
// place of the operand it reads it from). It answers as the built-in it stands for would
// answer on the document. bctx is the run's, lent for the call: it is read, never kept or
// written (a pointer, so that a call does not copy its few hundred bytes down the chain).
type RequestFunc func(bctx *topdown.BuiltinContext, req Request, args []*ast.Term, iter func(*ast.Term) error) error

// RequestBuiltin stands in for a built-in of Options.Builtins where its operand Arg is the
// reference input.request itself and the evaluation has a Request: the call then costs no
// request object.
type RequestBuiltin struct {
	Arg  int
	Func RequestFunc
	// Prepare, when set, is asked once per call site, as the policy is compiled, for a Func
	// made for that site's constant operands: consts holds each operand that is a constant
	// of the policy (nil for the others, Arg's included). It returns nil to keep Func. What
	// it returns must answer as Func would with those operands.
	Prepare func(consts []*ast.Term) RequestFunc
}

var (
	requestKey = ast.StringTerm("request")
	headersKey = ast.StringTerm("headers")
	nullTerm   = ast.NullTerm() // stands for an operand not evaluated; never read
)

// inputDoc returns the whole input document: the caller's, with input.request the
// Request's object when the evaluation has one. Built once per run.
func (r *run) inputDoc() *ast.Term {
	if r.req == nil {
		return r.input
	}
	if r.whole == nil {
		var doc ast.Value
		if r.input != nil {
			doc = r.input.Value
		}
		r.whole = ast.NewTerm(WithRequest(doc, r.request()))
	}
	return r.whole
}

// inputValue returns the whole input document as a value that may outlive the run (a rule's
// value, or part of one: loopback := input). The run's own term for the input is reused
// once the run is released, so the value gets a term of its own, once per run.
func (r *run) inputValue() *ast.Term {
	if r.req != nil {
		return r.inputDoc() // built for this run alone
	}
	if r.input == nil {
		return nil
	}
	if r.inputOwn == nil {
		r.inputOwn = ast.NewTerm(r.input.Value)
	}
	return r.inputOwn
}

// WithRequest returns the input document doc (an object, or nil for none) with req as its
// "request", replacing doc's own. doc is not modified.
func WithRequest(doc ast.Value, req *ast.Term) ast.Object {
	out := ast.NewObjectWithCapacity(4)
	if obj, ok := doc.(ast.Object); ok {
		obj.Foreach(func(k, v *ast.Term) {
			if !k.Equal(requestKey) {
				out.Insert(k, v)
			}
		})
	}
	out.Insert(requestKey, req)
	return out
}

// request returns input.request.
func (r *run) request() *ast.Term {
	if r.req == nil {
		return index(r.input, requestKey)
	}
	if r.reqTerm == nil {
		r.reqTerm = ast.NewTerm(r.req.Object())
	}
	return r.reqTerm
}

// requestField returns input.request[key].
func (r *run) requestField(key ast.String) *ast.Term {
	if r.req == nil {
		return index(r.request(), ast.NewTerm(key))
	}
	return r.req.Field(string(key))
}

// requestHeader returns input.request.headers[name].
func (r *run) requestHeader(name ast.String) *ast.Term {
	if r.req == nil {
		return index(index(r.request(), headersKey), ast.NewTerm(name))
	}
	return r.req.Header(string(name))
}

// isInputRequest reports whether t is the reference input.request.
func isInputRequest(t *ast.Term) bool {
	ref, ok := t.Value.(ast.Ref)
	if !ok || len(ref) != 2 || !ref[0].Equal(ast.InputRootDocument) {
		return false
	}
	k, ok := keyAt(ref, 1)
	return ok && k == "request"
}

// inputBase compiles where a reference into input starts: input.request's fields and
// headers are read from the Request when the evaluation has one. It returns the base and
// how many of ref's terms it consumed.
func (cc *compiler) inputBase(ref ast.Ref) (termFn, int) {
	k1, ok := keyAt(ref, 1)
	if !ok || k1 != "request" {
		cc.readsDocument = true
		if !ok {
			cc.readsRequest = true
			if len(ref) == 1 { // the whole input, as a value
				return func(r *run, _ frame) (*ast.Term, error) { return r.inputValue(), nil }, 1
			}
			return func(r *run, _ frame) (*ast.Term, error) { return r.inputDoc(), nil }, 1
		}
		// Another key of input: the caller's document holds it either way.
		return func(r *run, _ frame) (*ast.Term, error) { return r.input, nil }, 1
	}
	cc.readsRequest = true
	k2, ok := keyAt(ref, 2)
	if !ok {
		return func(r *run, _ frame) (*ast.Term, error) { return r.request(), nil }, 2
	}
	if k3, ok := keyAt(ref, 3); ok && k2 == "headers" {
		return func(r *run, _ frame) (*ast.Term, error) { return r.requestHeader(k3), nil }, 4
	}
	return func(r *run, _ frame) (*ast.Term, error) { return r.requestField(k2), nil }, 3
}

// bindRequest compiles v = input.request for a fresh v. Without a Request the value is
// bound as any other; with one, v stands for it, and the step only checks what the
// unification would: that input.request is defined, which a Request always is.
func (cc *compiler) bindRequest(v ast.Var, sc *scope) step {
	cc.readsRequest = true
	slot := sc.slot(v)
	sc.bound[v] = true
	if sc.request == nil {
		sc.request = map[ast.Var]bool{}
	}
	sc.request[v] = true
	return step{det: func(r *run, f frame) (bool, error) {
		if r.req != nil {
			return true, nil
		}
		t := r.request()
		f[slot] = t
		return t != nil, nil
	}}
}

// requestVar is the value of a variable bound by bindRequest: its slot, or the Request.
func (r *run) requestVar(bound *ast.Term) *ast.Term {
	if r.req != nil {
		return r.request()
	}
	return bound
}

// isRequest reports whether t is a variable that stands for input.request.
func (s *scope) isRequest(t *ast.Term) bool {
	v, ok := t.Value.(ast.Var)
	return ok && s.request[v]
}
