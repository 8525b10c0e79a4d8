package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"

	"github.com/hookwall/hookwall/engine/internal/httpsyntax"
	"github.com/hookwall/hookwall/engine/policy/internal/fastpath"
	"github.com/hookwall/hookwall/engine/state"
)

// Query is one route's prepared decision query. Safe for concurrent use.
type Query struct {
	pkg      string
	prepared rego.PreparedEvalQuery
	needJSON bool
	// allowOnly: the query is data.<pkg>.allow, not the package document.
	allowOnly bool
	// fast evaluates the same query without topdown when the package is in its subset;
	// slowWhy says why it is not.
	fast    *fastpath.Program
	slowWhy string
	rules   sync.Pool // *evalScratch, for fast
	// demoted, once set, is why the compiled evaluator no longer decides this query (it
	// diverged from topdown): topdown does until the query is prepared again (a reload).
	demoted atomic.Pointer[string]
	// credHeaders name the request headers the package hands to a builtin as credentials:
	// their values are noted as sensitive on every evaluation, whether or not the call is
	// reached (credentialHeaders).
	credHeaders []string
	// credPath: the package hands a value computed from input.request.path to a builtin as
	// a credential (a key sent as a path segment).
	credPath bool
}

// decisionRules are the rules a decision is read from; others are helpers.
var decisionRules = map[string]bool{
	"allow": true, "deny": true, "status": true, "rate_limit": true, "dedupe": true,
	"upstream_headers": true, "labels": true,
}

// Package returns the queried package ("routes.github").
func (q *Query) Package() string { return q.pkg }

// NeedsJSON reports whether the package reads input.request.json (or the request as a whole),
// so the caller parses the body only when the policy can see the result.
func (q *Query) NeedsJSON() bool { return q.needJSON }

// CredentialHeaders names, lower-cased and sorted, the request headers the package hands to
// hookwall's builtins as credentials, as far as the compiled policy shows
// (credentialHeaders). The caller must not change the slice.
func (q *Query) CredentialHeaders() []string { return q.credHeaders }

// CredentialPath reports whether the package hands a value computed from input.request.path
// to hookwall's builtins as a credential (a key sent as a path segment of a prefix route).
func (q *Query) CredentialPath() bool { return q.credPath }

// Prepare prepares the decision query for pkg. It fails when pkg defines no rule.
func (s *Set) Prepare(ctx context.Context, pkg string) (*Query, error) {
	pkg = strings.TrimPrefix(pkg, "data.")
	if !s.hasPackage(pkg) {
		return nil, fmt.Errorf("policy: package %q is not defined by any .rego file under the policy dir", pkg)
	}
	if !contains(s.packages[pkg], "allow") {
		return nil, fmt.Errorf("policy: package %q has no allow rule; every request would be denied", pkg)
	}
	if err := s.checkSecrets(pkg); err != nil {
		return nil, fmt.Errorf("policy: %s: %w", pkg, err)
	}
	// A package whose only decision rule is allow is asked for allow alone: evaluating the
	// whole package also evaluates its helper rules and builds an object of all of them.
	allowOnly := true
	for _, r := range s.packages[pkg] {
		if r != "allow" && decisionRules[r] {
			allowOnly = false
		}
	}
	query := "data." + pkg
	if allowOnly {
		query += ".allow"
	}
	opts := []func(*rego.Rego){
		rego.Compiler(s.compiler),
		rego.Store(s.store),
		rego.Query(query),
		rego.StrictBuiltinErrors(true),
		rego.GenerateJSON(keepTerm),
	}
	opts = append(opts, s.builtinOptions()...)
	pq, err := rego.New(opts...).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy: prepare %s: %w", pkg, describe(err))
	}
	q := &Query{pkg: pkg, prepared: pq, needJSON: s.needsJSON(pkg), allowOnly: allowOnly, credHeaders: s.credentialHeadersOf(pkg), credPath: s.credentialPathOf(pkg)}
	q.fast, q.slowWhy = s.compileFast(pkg, allowOnly)
	return q, nil
}

// Evaluator names what evaluates the query: "compiled" (the fast path) or "opa", with the
// reason the package is outside the fast path's subset.
func (q *Query) Evaluator() (name, reason string) {
	if why := q.demoted.Load(); why != nil {
		return "opa", *why
	}
	if q.fast != nil {
		return "compiled", ""
	}
	return "opa", q.slowWhy
}

// Compiled reports whether the compiled evaluator decides the query now.
func (q *Query) Compiled() bool { return q.fast != nil && q.demoted.Load() == nil }

// demote hands the query to topdown for good (the query's lifetime: until a reload
// prepares it again), giving the reason Evaluator reports. The first reason stays.
func (q *Query) demote(reason string) bool {
	return q.fast != nil && q.demoted.CompareAndSwap(nil, &reason)
}

// NeedsRequest reports whether an evaluation may read input.request. Only a compiled
// package can say it does not: the caller may then leave the request out of the input.
func (q *Query) NeedsRequest() bool { return !q.Compiled() || q.fast.ReadsRequest() }

// NeedsDocument reports whether EvalRequest given the request needs the rest of the input
// document (input.route, input.filters, or the whole input). When it is false the document
// may be nil.
func (q *Query) NeedsDocument() bool { return !q.Compiled() || q.fast.ReadsDocument() }

// compileFast compiles pkg for the fast path, or says why it stays with topdown.
func (s *Set) compileFast(pkg string, allowOnly bool) (*fastpath.Program, string) {
	if s.opts.OPAOnly {
		return nil, "evaluator = \"opa\""
	}
	o := fastpath.Options{Decls: s.builtinDecls(), Data: s.data}
	o.Builtins, o.RequestBuiltins = s.fastBuiltins()
	if allowOnly {
		o.Only = "allow"
	}
	p, err := fastpath.Compile(s.compiler, pkg, o)
	if err != nil {
		return nil, err.Error()
	}
	return p, ""
}

// Decision is what a route's package decided.
type Decision struct {
	Allow           bool
	Deny            []string
	Status          int
	RateLimit       *state.RateLimit
	Dedupe          *state.Dedupe
	UpstreamHeaders []Header
	Labels          map[string]any
}

// Denied reports whether the request must not be forwarded.
func (d *Decision) Denied() bool { return !d.Allow || len(d.Deny) > 0 }

// Header is one header the policy sets on the forwarded request.
type Header struct{ Name, Value string }

// EvalParams tunes one evaluation: a struct of settings, not one of OPA's functional
// rego.EvalOption values.
type EvalParams struct {
	// Tracer, when set, receives the rule trace (eval --explain); tracing needs topdown.
	Tracer topdown.QueryTracer
	// OPA evaluates with topdown even when the fast path covers the package.
	OPA bool
	// Yield, when positive, makes a topdown evaluation give up the processor as it starts
	// (what its caller ran before it, building the input, say, is not counted) and each
	// time it has run this long since it last did (checked before every expression): work
	// off the request path (the cross-check) then delays requests sharing the processor by
	// about Yield, not by the whole evaluation. The compiled evaluator does not yield.
	Yield time.Duration
}

// Request is input.request held apart from the input document (EvalRequest), so that an
// evaluation that reads a few of its fields need not build it. Each method answers what
// Object holds at that place: Field(k) is Object()[k], Header(n) is
// Object()["headers"][n], nil where the object holds nothing. Object is built on its first
// call, once. engine/internal/input's Captured implements it, and the webhook view verify reads:
// Text(k) for the string field k and Get(n) for the header n.
type Request interface {
	Object() ast.Object
	Field(key string) *ast.Term
	Header(name string) *ast.Term
}

// Eval evaluates the package on input. An error means the decision is unknown: the caller
// answers 500 and denies.
func (q *Query) Eval(ctx context.Context, input ast.Value, o *EvalParams) (Decision, error) {
	return q.EvalRequest(ctx, input, nil, o)
}

// EvalRequest is Eval on the input document doc with input.request req (doc's own
// "request" is then ignored); req nil is Eval. The compiled evaluator reads from req only
// what the policy reads; topdown gets the document with req's object.
func (q *Query) EvalRequest(ctx context.Context, doc ast.Value, req Request, o *EvalParams) (Decision, error) {
	if len(q.credHeaders) > 0 {
		noteCredentialHeaders(ctx, q.credHeaders, doc, req)
	}
	input := doc
	if q.Compiled() && (o == nil || (o.Tracer == nil && !o.OPA)) {
		var fr fastpath.Request
		if req != nil {
			fr = req
		}
		if q.fast.Only() {
			t, err := q.fast.Eval(ctx, input, fr, newDeadline(ctx))
			if err != nil {
				return Decision{}, fmt.Errorf("policy %s: %w", q.pkg, err)
			}
			return q.decide(t)
		}
		// The rules are read where they are, not from a package object built for the purpose.
		// The evaluation's deadline is pooled with them: neither outlives the evaluation.
		sc, _ := q.rules.Get().(*evalScratch)
		if sc == nil {
			sc = &evalScratch{}
		}
		sc.dl.reset(ctx)
		defer func() { // decode copies what it keeps
			sc.rules.Clear()
			sc.dl.clear()
			q.rules.Put(sc)
		}()
		if err := q.fast.EvalRules(ctx, input, fr, &sc.dl, &sc.rules); err != nil {
			return Decision{}, fmt.Errorf("policy %s: %w", q.pkg, err)
		}
		return decodeRules(q.pkg, &sc.rules)
	}
	dl := newDeadline(ctx)
	if o != nil && o.Yield > 0 {
		dl.quantum = int64(o.Yield)
		dl.yield()
	}
	if req != nil {
		input = fastpath.WithRequest(doc, ast.NewTerm(req.Object()))
	}
	eo := []rego.EvalOption{rego.EvalParsedInput(input), rego.EvalMetrics(metrics.NoOp()), rego.EvalExternalCancel(dl)}
	if o != nil && o.Tracer != nil {
		eo = append(eo, rego.EvalQueryTracer(o.Tracer))
	}
	rs, err := q.prepared.Eval(ctx, eo...)
	if err != nil {
		return Decision{}, fmt.Errorf("policy %s: %w", q.pkg, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return Decision{Status: 403}, nil
	}
	t, ok := rs[0].Expressions[0].Value.(*ast.Term)
	if !ok {
		return Decision{}, fmt.Errorf("policy %s: unexpected result %T", q.pkg, rs[0].Expressions[0].Value)
	}
	return q.decide(t)
}

// decide reads a Decision from the query's result term (nil: undefined).
func (q *Query) decide(t *ast.Term) (Decision, error) {
	if t == nil {
		return Decision{Status: 403}, nil
	}
	if q.allowOnly {
		b, ok := t.Value.(ast.Boolean)
		if !ok {
			return Decision{}, fmt.Errorf("policy %s: rule allow must be a boolean, got %s", q.pkg, ast.ValueName(t.Value))
		}
		return Decision{Allow: bool(b), Status: 403}, nil
	}
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return Decision{}, fmt.Errorf("policy %s: package evaluated to %s, not an object", q.pkg, ast.ValueName(t.Value))
	}
	return decode(q.pkg, obj)
}

// evalScratch is what one compiled evaluation of a package borrows from Query's pool.
type evalScratch struct {
	rules fastpath.Rules
	dl    deadline
}

// deadline implements topdown.Cancel by polling: OPA asks before every expression, and every
// 16th ask looks at the clock and the context. With a quantum, every ask does, and yields the
// processor (runtime.Gosched) once the evaluation has run a quantum since it last did: Go
// does not preempt a goroutine before it has run 10 ms, so without it a long evaluation
// holds a single processor, and every request waiting for it, until it ends.
type deadline struct {
	ctx     context.Context
	at      int64        // unix nanoseconds; 0 means none
	quantum int64        // nanoseconds; 0 means never yield
	resumed atomic.Int64 // unix nanoseconds when the evaluation last got the processor back
	n       atomic.Uint32
	done    atomic.Bool
}

// OPA watches ctx with a goroutine per evaluation unless it is given a Cancel; a polled
// deadline does the same job without one.
func newDeadline(ctx context.Context) *deadline {
	d := &deadline{}
	d.reset(ctx)
	return d
}

// reset readies d for an evaluation under ctx.
func (d *deadline) reset(ctx context.Context) {
	d.clear()
	d.ctx = ctx
	if t, ok := ctx.Deadline(); ok {
		d.at = t.UnixNano()
	}
}

// clear drops the evaluation's context, so that a pooled deadline keeps no request's.
func (d *deadline) clear() {
	d.ctx, d.at, d.quantum = nil, 0, 0
	d.n.Store(0)
	d.done.Store(false)
}

func (d *deadline) Cancel() { d.done.Store(true) }

func (d *deadline) Cancelled() bool {
	if d.done.Load() {
		return true
	}
	// With a quantum every ask looks at the clock (a few dozen nanoseconds): one expression
	// can run for microseconds (a builtin, a rule's whole body), and the benchmark's
	// reference policy asks only about 30 times in all.
	if d.quantum == 0 && d.n.Add(1)&15 != 0 {
		return false
	}
	var now int64 // read only when a deadline or a quantum needs it
	if d.at != 0 || d.quantum != 0 {
		now = time.Now().UnixNano()
	}
	if (d.at != 0 && now > d.at) || d.ctx.Err() != nil {
		d.done.Store(true)
		return true
	}
	if d.quantum != 0 && now-d.resumed.Load() >= d.quantum {
		d.yield()
	}
	return false
}

// yield gives up the processor and notes when it came back.
func (d *deadline) yield() {
	runtime.Gosched()
	d.resumed.Store(time.Now().UnixNano())
}

// keepTerm hands evaluation results over as AST terms: the decision is read from them
// directly, without converting the whole package document to Go values first.
func keepTerm(t *ast.Term, _ *rego.EvalContext) (any, error) { return t, nil }

var (
	kAllow           = ast.InternedTerm("allow")
	kDeny            = ast.InternedTerm("deny")
	kStatus          = ast.InternedTerm("status")
	kRateLimit       = ast.InternedTerm("rate_limit")
	kDedupe          = ast.InternedTerm("dedupe")
	kUpstreamHeaders = ast.InternedTerm("upstream_headers")
	kLabels          = ast.InternedTerm("labels")
	kKey             = ast.InternedTerm("key")
	kLimit           = ast.InternedTerm("limit")
	kPer             = ast.InternedTerm("per")
	kBurst           = ast.InternedTerm("burst")
	kTTL             = ast.InternedTerm("ttl")
)

// decisionTerms are a package's decision rules as found (nil: undefined), all read before
// any is checked, so the checks run in one order whatever held the rules. A rule the compiled
// evaluator kept unbuilt (an object literal) is in rateLimitF or dedupeF instead.
type decisionTerms struct {
	allow, deny, status, rateLimit, dedupe, upstreamHeaders, labels *ast.Term
	rateLimitF, dedupeF                                             *fastpath.Fields
}

// decode reads the decision from the package object topdown returned.
func decode(pkg string, obj ast.Object) (Decision, error) {
	dt := decisionTerms{
		allow: obj.Get(kAllow), deny: obj.Get(kDeny), status: obj.Get(kStatus),
		rateLimit: obj.Get(kRateLimit), dedupe: obj.Get(kDedupe),
		upstreamHeaders: obj.Get(kUpstreamHeaders), labels: obj.Get(kLabels),
	}
	return dt.decode(pkg)
}

// decodeRules reads the decision from the rules the compiled evaluator found, in one pass
// over them rather than a search by name per decision rule.
func decodeRules(pkg string, rs *fastpath.Rules) (Decision, error) {
	var dt decisionTerms
	for i := range rs.Len() {
		switch rs.Name(i) {
		case "allow":
			dt.allow = rs.At(i)
		case "deny":
			dt.deny = rs.At(i)
		case "status":
			dt.status = rs.At(i)
		case "rate_limit":
			if dt.rateLimitF = rs.FieldsAt(i); dt.rateLimitF == nil {
				dt.rateLimit = rs.At(i)
			}
		case "dedupe":
			if dt.dedupeF = rs.FieldsAt(i); dt.dedupeF == nil {
				dt.dedupe = rs.At(i)
			}
		case "upstream_headers":
			dt.upstreamHeaders = rs.At(i)
		case "labels":
			dt.labels = rs.At(i)
		}
	}
	return dt.decode(pkg)
}

// decode checks the decision rules, in a fixed order (the first bad one is the error). Strings
// it keeps are cloned: the input's strings may be views of request buffers that do not
// outlive the request, while keys go to the state store.
//
// It is on every request's path: no closure captures d (it would move d to the heap), and
// the rule errors are built by a plain function.
func (dt *decisionTerms) decode(pkg string) (Decision, error) {
	d := Decision{Status: 403}
	bad := func(rule, want string, v *ast.Term) error { return badRule(pkg, rule, want, v) }
	// A decision with both obligations (the common webhook route) gets them in one allocation.
	type obligations struct {
		rl state.RateLimit
		dd state.Dedupe
	}
	var ob *obligations
	need := func() *obligations {
		if ob == nil {
			ob = new(obligations)
		}
		return ob
	}
	if v := dt.allow; v != nil {
		b, ok := v.Value.(ast.Boolean)
		if !ok {
			return Decision{}, bad("allow", "a boolean", v)
		}
		d.Allow = bool(b)
	}
	if v := dt.deny; v != nil {
		set, ok := v.Value.(ast.Set)
		if !ok {
			return Decision{}, bad("deny", "a set of strings", v)
		}
		var err error
		if d.Deny, err = decodeDeny(pkg, set); err != nil {
			return Decision{}, err
		}
	}
	if v := dt.status; v != nil {
		n, ok := intOf(v)
		if !ok || n < 400 || n > 599 {
			return Decision{}, bad("status", "an HTTP error status (400-599)", v)
		}
		d.Status = int(n)
	}
	if f, obj, defined := ruleObject(dt.rateLimitF, dt.rateLimit); defined {
		if f == nil && obj == nil {
			return Decision{}, bad("rate_limit", `an object {"key", "limit", "per"}`, dt.rateLimit)
		}
		var ok bool
		rl := &need().rl
		of := readObligation(f, obj, true)
		if rl.Key, ok = stringOf(of.key); !ok || rl.Key == "" {
			return Decision{}, bad("rate_limit.key", "a non-empty string", of.key)
		}
		if rl.Limit, ok = intOf(of.limit); !ok || rl.Limit < 1 {
			return Decision{}, bad("rate_limit.limit", "an integer >= 1", of.limit)
		}
		if rl.Per, ok = durationOf(of.per); !ok || rl.Per <= 0 {
			return Decision{}, bad("rate_limit.per", `a duration string such as "1m"`, of.per)
		}
		if b := of.burst; b != nil {
			if rl.Burst, ok = intOf(b); !ok || rl.Burst < 1 {
				return Decision{}, bad("rate_limit.burst", "an integer >= 1", b)
			}
		}
		d.RateLimit = rl
	}
	if f, obj, defined := ruleObject(dt.dedupeF, dt.dedupe); defined {
		if f == nil && obj == nil {
			return Decision{}, bad("dedupe", `an object {"key", "ttl"}`, dt.dedupe)
		}
		var ok bool
		dd := &need().dd
		of := readObligation(f, obj, false)
		if dd.Key, ok = stringOf(of.key); !ok || dd.Key == "" {
			return Decision{}, bad("dedupe.key", "a non-empty string", of.key)
		}
		if dd.TTL, ok = durationOf(of.ttl); !ok || dd.TTL <= 0 {
			return Decision{}, bad("dedupe.ttl", `a duration string such as "24h"`, of.ttl)
		}
		d.Dedupe = dd
	}
	if v := dt.upstreamHeaders; v != nil {
		m, ok := v.Value.(ast.Object)
		if !ok {
			return Decision{}, bad("upstream_headers", "an object of strings", v)
		}
		var err error
		if d.UpstreamHeaders, err = decodeHeaders(pkg, m); err != nil {
			return Decision{}, err
		}
	}
	if v := dt.labels; v != nil {
		if _, ok := v.Value.(ast.Object); !ok {
			return Decision{}, bad("labels", "an object", v)
		}
		if x, ok := labelValue(v.Value); ok {
			d.Labels, _ = x.(map[string]any)
		} else { // keys that are not strings: OPA's conversion encodes them as JSON
			x, err := ast.JSON(v.Value)
			if err != nil {
				return Decision{}, fmt.Errorf("policy %s: rule labels: %w", pkg, err)
			}
			d.Labels, _ = cloneJSON(x).(map[string]any)
		}
	}
	return d, nil
}

// ruleObject returns an obligation rule as an object to read fields from: f when the
// compiled evaluator kept it unbuilt, else its value v as an object. defined is false when
// the rule is undefined; both are nil when v is not an object.
func ruleObject(f *fastpath.Fields, v *ast.Term) (_ *fastpath.Fields, obj ast.Object, defined bool) {
	if f != nil {
		return f, nil, true
	}
	if v == nil {
		return nil, nil, false
	}
	obj, _ = v.Value.(ast.Object)
	return nil, obj, true
}

// obligationFields are the fields of a rate_limit or dedupe object that decode reads (nil:
// absent).
type obligationFields struct{ key, limit, per, burst, ttl *ast.Term }

// readObligation reads the fields of f, an unbuilt object (in one pass over its fields), or
// else of obj: rate_limit's (key, limit, per, burst) when rate is set, dedupe's (key, ttl)
// otherwise.
func readObligation(f *fastpath.Fields, obj ast.Object, rate bool) (o obligationFields) {
	if f != nil {
		for i := range f.Len() {
			k, v := f.At(i)
			name, _ := k.Value.(ast.String)
			switch {
			case name == "key":
				o.key = v
			case !rate && name == "ttl":
				o.ttl = v
			case rate && name == "limit":
				o.limit = v
			case rate && name == "per":
				o.per = v
			case rate && name == "burst":
				o.burst = v
			}
		}
		return o
	}
	o.key = obj.Get(kKey)
	if rate {
		o.limit, o.per, o.burst = obj.Get(kLimit), obj.Get(kPer), obj.Get(kBurst)
	} else {
		o.ttl = obj.Get(kTTL)
	}
	return o
}

// badRule is the error of a decision rule whose value is not what it must be.
func badRule(pkg, rule, want string, v *ast.Term) error {
	got := "undefined"
	if v != nil {
		got = ast.ValueName(v.Value)
	}
	return fmt.Errorf("policy %s: rule %s must be %s, got %s", pkg, rule, want, got)
}

// decodeDeny reads the deny set: its strings, cloned and sorted.
func decodeDeny(pkg string, set ast.Set) ([]string, error) {
	var deny []string
	var err error
	set.Foreach(func(r *ast.Term) {
		s, ok := r.Value.(ast.String)
		if !ok && err == nil {
			err = badRule(pkg, "deny", "a set of strings", r)
		}
		deny = append(deny, strings.Clone(string(s)))
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(deny)
	return deny, nil
}

// decodeHeaders reads upstream_headers, sorted by name. A name must be an HTTP token and not
// one the gateway owns on the forwarded request (hop-by-hop, framing, Host, the X-Forwarded-*
// it writes, X-Request-Id); a value must hold no control character but tab (httpsyntax
// IsFieldValue): the policy computes them, perhaps from the request, and a malformed decision
// fails closed rather than reaching the upstream as a header the design strips or owns, or a
// line split or read otherwise where the client chose.
func decodeHeaders(pkg string, m ast.Object) ([]Header, error) {
	var hs []Header
	var err error
	m.Foreach(func(k, hv *ast.Term) {
		name, ok1 := stringOf(k)
		val, ok2 := stringOf(hv)
		switch {
		case err != nil:
		case !ok1 || !ok2:
			err = badRule(pkg, "upstream_headers", "an object of strings", hv)
		case !httpsyntax.IsToken(name):
			err = fmt.Errorf("policy %s: rule upstream_headers: %q is not a header name (an HTTP token)", pkg, name)
		case ownedHeader(name):
			err = fmt.Errorf("policy %s: rule upstream_headers: %q is set by the gateway, not by a policy", pkg, name)
		case !httpsyntax.IsFieldValue(val):
			err = fmt.Errorf("policy %s: rule upstream_headers: the value of %q holds a control character (CR, LF, NUL, DEL or another but tab)", pkg, name)
		}
		hs = append(hs, Header{Name: name, Value: val})
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].Name < hs[j].Name })
	return hs, nil
}

// ownedHeader reports whether name is a header the gateway sets or strips on the forwarded
// request itself: the hop-by-hop ones, the framing, Host, and those it writes for the
// upstream (the client's address, host and scheme, the decision id): the design gives them
// the gateway's values, and a policy that copied a client's header into one would let the
// client forge them.
func ownedHeader(name string) bool {
	if httpsyntax.IsHopByHop(name) {
		return true
	}
	if strings.EqualFold(name, "Content-Length") || strings.EqualFold(name, "Host") {
		return true
	}
	for _, h := range httpsyntax.GatewayOwned {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// labelValue converts a label value to Go values as ast.JSON does, with every string cloned, in
// one pass; ok is false for an object key that is not a string.
func labelValue(v ast.Value) (any, bool) {
	switch x := v.(type) {
	case ast.Null:
		return nil, true
	case ast.Boolean:
		return bool(x), true
	case ast.Number:
		return json.Number(strings.Clone(string(x))), true
	case ast.String:
		return strings.Clone(string(x)), true
	case *ast.Array:
		out := make([]any, 0, x.Len())
		for i := range x.Len() {
			e, ok := labelValue(x.Elem(i).Value)
			if !ok {
				return nil, false
			}
			out = append(out, e)
		}
		return out, true
	case ast.Set:
		out := make([]any, 0, x.Len())
		ok := true
		x.Foreach(func(t *ast.Term) {
			e, eok := labelValue(t.Value)
			ok = ok && eok
			out = append(out, e)
		})
		return out, ok
	case ast.Object:
		out := make(map[string]any, x.Len())
		ok := true
		x.Foreach(func(k, t *ast.Term) {
			ks, kok := k.Value.(ast.String)
			e, eok := labelValue(t.Value)
			ok = ok && kok && eok
			out[strings.Clone(string(ks))] = e
		})
		return out, ok
	}
	return nil, false
}

// cloneJSON deep-copies the strings of a converted value: label values may be views of the
// request's input, which does not outlive the request.
func cloneJSON(v any) any {
	switch x := v.(type) {
	case string:
		return strings.Clone(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[strings.Clone(k)] = cloneJSON(e)
		}
		return out
	case []any:
		for i, e := range x {
			x[i] = cloneJSON(e)
		}
		return x
	}
	return v
}

func stringOf(t *ast.Term) (string, bool) {
	if t == nil {
		return "", false
	}
	s, ok := t.Value.(ast.String)
	return strings.Clone(string(s)), ok
}

func intOf(t *ast.Term) (int64, bool) {
	if t == nil {
		return 0, false
	}
	n, ok := t.Value.(ast.Number)
	if !ok {
		return 0, false
	}
	return n.Int64()
}

func durationOf(t *ast.Term) (time.Duration, bool) {
	if t == nil {
		return 0, false
	}
	s, ok := t.Value.(ast.String)
	if !ok {
		return 0, false
	}
	if d, ok := wholeUnits(string(s)); ok {
		return d, true
	}
	d, err := time.ParseDuration(string(s))
	return d, err == nil
}

// wholeUnits parses the form every duration of a decision rule has in practice, up to nine
// digits and one unit ("1h", "24h", "1m"), to what time.ParseDuration gives for it, without
// its look-up of the unit in a map: it runs for each obligation of every request. ok is false
// for any other form, and for a value past time.Duration's range; ParseDuration decides those.
func wholeUnits(s string) (time.Duration, bool) {
	var n int64
	i := 0
	for ; i < len(s) && i < 10 && '0' <= s[i] && s[i] <= '9'; i++ {
		n = n*10 + int64(s[i]-'0')
	}
	if i == 0 || i > 9 {
		return 0, false
	}
	var unit int64
	switch s[i:] {
	case "h":
		unit = int64(time.Hour)
	case "m":
		unit = int64(time.Minute)
	case "s":
		unit = int64(time.Second)
	case "ms":
		unit = int64(time.Millisecond)
	case "us", "µs", "μs": // U+00B5 and U+03BC, as ParseDuration
		unit = int64(time.Microsecond)
	case "ns":
		unit = 1
	default:
		return 0, false
	}
	if n > math.MaxInt64/unit {
		return 0, false
	}
	return time.Duration(n * unit), true
}

// packageGraph reads the modules as parsed (the compiler rewrites call arguments into local
// variables) and returns which packages may observe input.request.json — a reference to it,
// or to input / input.request as a whole other than as the request argument of
// hookwall.webhook.verify — and which packages each package refers to.
func packageGraph(mods map[string]*ast.Module) (readers map[string]bool, deps map[string][]string) {
	readers, deps = map[string]bool{}, map[string][]string{}
	for _, m := range mods {
		pkg := strings.TrimPrefix(m.Package.Path.String(), "data.")
		if readsJSON(m) {
			readers[pkg] = true
		}
		for _, imp := range m.Imports {
			if ref, ok := imp.Path.Value.(ast.Ref); ok && ref.HasPrefix(ast.DefaultRootRef) {
				deps[pkg] = append(deps[pkg], refPath(ref))
			}
		}
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if r.HasPrefix(ast.DefaultRootRef) {
				deps[pkg] = append(deps[pkg], refPath(r))
			}
			return false
		})
	}
	return readers, deps
}

// refPath renders the constant prefix of a data reference without "data.".
func refPath(r ast.Ref) string {
	parts := make([]string, 0, len(r))
	for _, t := range r[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			break
		}
		parts = append(parts, string(s))
	}
	return strings.Join(parts, ".")
}

// related reports whether a reference to path can reach package pkg: one is a prefix of the
// other (data.a refers to all of data.a.b; data.a.b.rule lives in package a.b).
func related(path, pkg string) bool {
	return path == "" || path == pkg || strings.HasPrefix(pkg, path+".") || strings.HasPrefix(path, pkg+".")
}

// needsJSON reports whether pkg, or any package it refers to transitively, reads the body as
// JSON; routes whose policies never do are spared the parse.
func (s *Set) needsJSON(pkg string) bool {
	seen := map[string]bool{pkg: true}
	queue := []string{pkg}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if s.jsonReaders[p] {
			return true
		}
		for _, path := range s.deps[p] {
			for other := range s.packages {
				if !seen[other] && related(path, other) {
					seen[other] = true
					queue = append(queue, other)
				}
			}
		}
	}
	return false
}

func readsJSON(m *ast.Module) bool {
	verifyArgs := map[*ast.Term]bool{}
	ast.WalkTerms(m, func(t *ast.Term) bool {
		if call, ok := t.Value.(ast.Call); ok && len(call) >= 4 && call[0].Value.Compare(verifyRef) == 0 {
			verifyArgs[call[2]] = true
		}
		return false
	})
	ast.WalkExprs(m, func(e *ast.Expr) bool {
		if terms, ok := e.Terms.([]*ast.Term); ok && len(terms) >= 4 && terms[0].Value.Compare(verifyRef) == 0 {
			verifyArgs[terms[2]] = true
		}
		return false
	})
	found := false
	ast.WalkTerms(m, func(t *ast.Term) bool {
		if found {
			return true
		}
		ref, ok := t.Value.(ast.Ref)
		if !ok || len(ref) == 0 || !ref[0].Equal(ast.InputRootDocument) {
			return false
		}
		switch {
		case len(ref) == 1:
			found = !verifyArgs[t]
		case !isConstString(ref[1]):
			found = true // input[x]: could be "request", and below it "json"
		case ref[1].Value.Compare(ast.String("request")) != 0:
		case len(ref) == 2:
			found = !verifyArgs[t]
		case ref[2].Value.Compare(ast.String("json")) == 0:
			found = true
		case !isConstString(ref[2]):
			found = true // input.request[x]: could be "json"
		}
		return false
	})
	return found
}

func isConstString(t *ast.Term) bool {
	_, ok := t.Value.(ast.String)
	return ok
}

var verifyRef = ast.MustParseRef("hookwall.webhook.verify")
