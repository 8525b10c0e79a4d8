package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/policy"
	"github.com/hookwall/hookwall/engine/state"
)

// DryRun tunes Evaluate.
type DryRun struct {
	// Route names the route to evaluate; "" routes the request as the gateway would.
	Route string
	// RemoteAddr is the client's address (X-Forwarded-For is then honoured from
	// [server] trusted_proxies as live); nil means 127.0.0.1.
	RemoteAddr net.Addr
	// Tracer, when set, receives the live policy's evaluation trace.
	Tracer topdown.QueryTracer
}

// FilterOutcome is what one filter did in a dry run.
type FilterOutcome struct {
	Name    string                    `json:"name"`
	Outcome decisionlog.FilterOutcome `json:"outcome"`
	Error   string                    `json:"error,omitempty"`
	Labels  map[string]string         `json:"labels,omitempty"`
	Micros  int64                     `json:"us"`
}

// Evaluation is what the gateway would do with a request, short of acting on it.
type Evaluation struct {
	Route    string `json:"route"`
	Policy   string `json:"policy,omitempty"`
	Revision string `json:"revision"`
	// Outcome is a decision-log outcome: "allowed" (the request would be forwarded, after the
	// rate_limit and dedupe checks, which a dry run does not make), "denied", "filtered",
	// "error", "method_not_allowed" or "no_route".
	Outcome decisionlog.Outcome `json:"outcome"`
	// Status is the gateway's answer; 0 when the request would be forwarded (the upstream
	// answers).
	Status int `json:"status,omitempty"`
	// Allow and Deny are the policy's rules (Allow false and Deny empty when it did not run).
	Allow   bool     `json:"allow"`
	Deny    []string `json:"deny"`
	Reasons []string `json:"reasons"`
	Error   string   `json:"error,omitempty"`
	// Evaluated reports whether the policy ran (a filter or the router may end a request
	// first).
	Evaluated       bool              `json:"evaluated"`
	Labels          map[string]any    `json:"labels"`
	Filters         []FilterOutcome   `json:"filters"`
	RateLimit       *state.RateLimit  `json:"rate_limit,omitempty"`
	Dedupe          *state.Dedupe     `json:"dedupe,omitempty"`
	UpstreamHeaders map[string]string `json:"upstream_headers,omitempty"`
	// Forwarded is what the filters changed in the request the upstream would get, a path
	// made canonical included (the policy judged the request as received, its path
	// canonical); nil when it would not be forwarded.
	Forwarded *filter.Changes `json:"forwarded,omitempty"`
	// ResponsePhase is what the filters' response phase did to an upstream answer of 200 with
	// a short text body (nil when no filter of the route has a response phase, or the request
	// would not be forwarded).
	ResponsePhase *ResponsePhase      `json:"response_phase,omitempty"`
	Shadow        *decisionlog.Shadow `json:"shadow,omitempty"`
	// Input is the document the policy was evaluated on (nil when it did not run).
	Input ast.Value `json:"-"`
}

// ResponsePhase is the filters' response phase in a dry run.
type ResponsePhase struct {
	// Upstream is the answer the phase ran on, as "status body".
	Upstream string          `json:"upstream"`
	Changes  *filter.Changes `json:"changes"`
	// Failed names the filters that failed in it, with what became of the answer
	// ("error": replaced by the gateway's 502; "skipped": kept as it was before the filter).
	Failed []FilterOutcome `json:"failed,omitempty"`
}

// dryUpstream is the upstream answer a dry run's response phase runs on.
const dryUpstreamBody = "ok\n"

// endDryRun ends a dry run (Evaluate) once the live and the shadow policy decided, before
// anything acts on the decision: no obligation is checked, nothing is stored or forwarded.
// An allowed request keeps its filter instances, whose response phase Evaluate then shows;
// otherwise they are released. Writes x.dry; on a live request it does nothing.
func (s *Server) endDryRun(x *exchange) (done bool) {
	d := x.dry
	if d == nil {
		return false
	}
	d.evaluated = true
	if x.policyErr != nil || x.dec.Denied() {
		s.releaseInstances(x)
	}
	return true
}

// responsePhase runs the kept instances' response phase on a 200 answer, as the live gateway
// runs it on the upstream's, and reports what it changed. Instances are left only when
// endDryRun kept them: every stage that ends a request releases them or runs their response
// phase, and endDryRun releases a refused request's.
func (s *Server) responsePhase(x *exchange, ctx *fasthttp.RequestCtx) *ResponsePhase {
	route := x.route
	if len(x.instances) == 0 {
		return nil
	}
	ctx.Response.Reset()
	ctx.Response.SetStatusCode(fasthttp.StatusOK)
	ctx.Response.Header.SetContentType("text/plain; charset=utf-8")
	ctx.Response.SetBodyString(dryUpstreamBody)
	before := filter.ResponseMessage(&ctx.Response)
	rctx, cancel := context.WithTimeout(context.Background(), route.Timeout)
	defer cancel()
	// A failure in the response phase marks the filter's entry (noteResponseFailure): the
	// entries whose outcome it changed are the phase's failures.
	outcomes := make([]decisionlog.FilterOutcome, len(x.rec.Filters))
	for i, f := range x.rec.Filters {
		outcomes[i] = f.Outcome
	}
	s.finishFilters(rctx, x, route, false)
	ph := &ResponsePhase{Upstream: "200 " + strings.TrimSpace(dryUpstreamBody), Changes: filter.Diff(before, filter.ResponseMessage(&ctx.Response))}
	for i, f := range x.rec.Filters {
		if f.Outcome != outcomes[i] {
			ph.Failed = append(ph.Failed, FilterOutcome{Name: f.Name, Outcome: f.Outcome, Error: f.Error})
		}
	}
	return ph
}

// dryRun is an exchange's dry-run state (Evaluate): the stages that act on the world consult
// it (pickRoute takes its route, evalPolicy its tracer, checkBlocked and crossCheck stand
// aside), and endDryRun ends the request once the policies decided.
type dryRun struct {
	route     *snapshot.Route // the route named, nil to route as the gateway would
	opt       *policy.EvalParams
	evaluated bool // the policy ran (endDryRun was reached)
}

// pick returns the dry run's route when it names one, else the router's match. d may be nil.
func (d *dryRun) pick(r *snapshot.Route, ok bool) (*snapshot.Route, bool) {
	if d == nil || d.route == nil {
		return r, ok
	}
	return d.route, true
}

// evalParams returns the policy options of the dry run; nil (live requests) when d is nil.
func (d *dryRun) evalParams() *policy.EvalParams {
	if d == nil {
		return nil
	}
	return d.opt
}

// ErrNoRoute is returned by Evaluate when DryRun.Route names no route.
var ErrNoRoute = errors.New("server: no such route")

// Evaluate runs req through the live snapshot's pipeline exactly as a request on the
// listener would go (route, method check, filters in order with their on_error, the policy
// on the request as received, the shadow policy) and returns the decision, without checking
// rate limits or duplicates, forwarding, or writing a decision-log record or metrics. Filters
// run for real: a filter with side effects outside the sandbox has none, by design. req is
// not modified. Safe for concurrent use.
func (s *Server) Evaluate(req *fasthttp.Request, o DryRun) (ev *Evaluation, err error) {
	snap := s.o.Snapshots.Acquire()
	if snap == nil {
		return nil, errors.New("server: no snapshot loaded")
	}
	defer snap.Release()
	d := &dryRun{}
	if o.Tracer != nil {
		d.opt = &policy.EvalParams{Tracer: o.Tracer}
	}
	if o.Route != "" {
		for _, r := range snap.Routes {
			if r.Name == o.Route {
				d.route = r
			}
		}
		if d.route == nil {
			names := make([]string, 0, len(snap.Routes))
			for _, r := range snap.Routes {
				names = append(names, r.Name)
			}
			return nil, fmt.Errorf("%w %q (routes: %s)", ErrNoRoute, o.Route, strings.Join(names, ", "))
		}
	}
	remote := o.RemoteAddr
	if remote == nil {
		remote = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	}
	var ctx fasthttp.RequestCtx
	ctx.Init(req, remote, fasthttpLogger{s.log})
	x := &exchange{dry: d}
	rec := &x.rec
	rec.Time = time.Now()
	rec.DecisionID = randomDecisionID(&x.idBuf)
	rec.Method = string(ctx.Method())
	rec.Path = rawPath(&ctx, &x.in)
	rec.Revision = snap.Revision
	defer func() {
		if p := recover(); p != nil {
			s.releaseInstances(x)
			ev, err = nil, fmt.Errorf("server: panic in evaluation (stage %s): %v", x.stageName(), p)
		}
	}()
	received := filter.RequestMessage(req)
	x.ctx, x.snap = &ctx, snap
	s.serve(x)
	ev = x.evaluation()
	if ev.Outcome == decisionlog.OutcomeAllowed {
		ev.Forwarded = filter.Diff(received, filter.RequestMessage(&ctx.Request))
	}
	ev.ResponsePhase = s.responsePhase(x, &ctx)
	return ev, nil
}

// evaluation reads what the stages left in the exchange.
func (x *exchange) evaluation() *Evaluation {
	rec := &x.rec
	ev := &Evaluation{
		Route: rec.Route, Policy: rec.Policy, Revision: rec.Revision, Outcome: rec.Outcome, Status: rec.Status,
		Deny: []string{}, Reasons: append([]string{}, rec.Reasons...), Error: rec.Error, Labels: map[string]any{},
		Filters: []FilterOutcome{},
	}
	for _, f := range rec.Filters {
		fo := FilterOutcome{Name: f.Name, Outcome: f.Outcome, Error: f.Error, Micros: f.Micros}
		fo.Labels = x.filterLabels(f.Name)
		ev.Filters = append(ev.Filters, fo)
	}
	if rec.Shadow.Policy != "" {
		sh := rec.Shadow
		ev.Shadow = &sh
	}
	if !x.dry.evaluated {
		// A stage before the policy answered, and recorded it.
		if ev.Outcome == "" {
			ev.Outcome, ev.Status = decisionlog.OutcomeError, x.ctx.Response.StatusCode()
		}
		return ev
	}
	ev.Evaluated, ev.Input = true, x.doc
	if x.policyErr != nil {
		ev.Outcome, ev.Status, ev.Error = decisionlog.OutcomeError, fasthttp.StatusInternalServerError, x.policyErr.Error()
		return ev
	}
	dec := &x.dec
	ev.Allow = dec.Allow
	if dec.Deny != nil {
		ev.Deny = dec.Deny
	}
	if dec.Labels != nil {
		ev.Labels = dec.Labels
	}
	if dec.Denied() {
		reasons := dec.Deny
		if len(reasons) == 0 {
			reasons = []string{"not allowed"}
		}
		ev.Reasons = append(ev.Reasons, reasons...)
		ev.Outcome, ev.Status = decisionlog.OutcomeDenied, dec.Status
		return ev
	}
	ev.Outcome, ev.Status = decisionlog.OutcomeAllowed, 0
	if rl := dec.RateLimit; rl != nil {
		ev.RateLimit = rl
	}
	if dd := dec.Dedupe; dd != nil {
		ev.Dedupe = dd
	}
	if len(dec.UpstreamHeaders) > 0 {
		ev.UpstreamHeaders = make(map[string]string, len(dec.UpstreamHeaders))
		for _, h := range dec.UpstreamHeaders {
			ev.UpstreamHeaders[h.Name] = h.Value
		}
	}
	return ev
}
