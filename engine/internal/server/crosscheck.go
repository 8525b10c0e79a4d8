package server

import (
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/hookwall/hookwall/engine/internal/input"
	"github.com/hookwall/hookwall/engine/policy"
)

// DivergenceObserver is implemented by an Observer that also counts cross-checked compiled
// decisions that topdown answered differently.
type DivergenceObserver interface {
	Divergence(route string)
}

// crossCheckQueue bounds the decisions waiting for their topdown evaluation; past it a
// sampled decision is dropped, never waited for.
const crossCheckQueue = 64

// newCrossCheck makes the server's cross-check, reporting divergences to the observer.
func newCrossCheck(o Options) *policy.CrossCheck {
	var diverged func(string)
	if d, ok := o.Observer.(DivergenceObserver); ok {
		diverged = d.Divergence
	}
	return policy.NewCrossCheck(crossCheckQueue, o.Logger, diverged)
}

// CrossCheckStats returns the cross-check's counters: the sampled decisions evaluated again,
// dropped by its full queue, and skipped over [policies] cross_check_max.
func (s *Server) CrossCheckStats() (checked, dropped, skipped uint64) {
	return s.xc.Checked(), s.xc.Dropped(), s.xc.Skipped()
}

// crossCheck offers a sample ([policies] cross_check) of the compiled evaluator's decisions,
// at most [policies] cross_check_max a second, to be evaluated again with topdown, off the
// request path. An unsampled request costs a random draw; a sample over the ceiling, the
// draw and the bucket's atomic (timed by the request's arrival, no clock read); an admitted
// one, handing its captured request and its labels over to the worker, which builds the
// input document from them (input.Captured.Handover: no string is copied). Reads x.dec,
// x.policyErr, x.captured (capturing the request now if nothing did), x.rec.Time; not in a
// dry run; never ends the request.
func (s *Server) crossCheck(x *exchange) (done bool) {
	route, pc := x.route, &x.snap.Config.Policies
	if x.dry != nil || !policy.Sample(pc.CrossCheck) || !route.Query.Compiled() || !s.xc.Admit(x.rec.Time, pc.CrossCheckMax) {
		return false
	}
	// Topdown reads the whole document, request included, which the compiled evaluator may
	// have been spared. A compiled policy that reads no request was given none: topdown gets
	// the request as it is now, and answers alike unless the policy does read it after all.
	captured := x.captured
	if captured == nil {
		captured = x.in.Capture(&x.ctx.Request, &x.meta)
	}
	h := crossCheckInput{req: captured.Handover(), meta: input.Meta{
		RouteName: x.meta.RouteName, RoutePath: x.meta.RoutePath, Route: x.meta.Route, Source: x.meta.Source,
	}}
	if len(x.labels) > 0 {
		// A filter's labels may be views of buffers the exchange reuses.
		h.labels = make([]label, len(x.labels))
		for i, l := range x.labels {
			h.labels[i] = label{strings.Clone(l.filter), strings.Clone(l.key), strings.Clone(l.value)}
		}
	}
	s.xc.Offer(policy.CrossCheckJob{
		Route: route.Name, DecisionID: x.rec.DecisionID, Query: route.Query, Build: h.document,
		Decision: x.dec, Err: x.policyErr, Timeout: min(route.Timeout, maxShadowTime), Demote: pc.OnDivergence == "opa",
	})
	return false
}

// crossCheckInput is what the cross-check's worker builds a sampled request's input document
// from, owned by it: the captured request, what input.Document reads of the request's
// metadata (the route's and the source's objects are shared and never changed), and the
// filters' labels.
type crossCheckInput struct {
	req    *input.Captured
	meta   input.Meta
	labels []label
}

// document builds the input document as the request path would have: the request's object
// from the same capture, and input.filters by the same function.
func (h *crossCheckInput) document() ast.Value {
	return input.Document(h.req.Object(), &h.meta, filtersInput(h.labels))
}
