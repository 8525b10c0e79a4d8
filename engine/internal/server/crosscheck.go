package server

import (
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

// crossCheck offers a sample ([policies] cross_check) of the compiled evaluator's decisions
// to be evaluated again with topdown, off the request path. An unsampled request costs a
// random draw; a sampled one, the whole input document, built and copied for the worker.
// Reads x.dec, x.policyErr, x.captured (capturing the request now if nothing did); not in a
// dry run; never ends the request.
func (s *Server) crossCheck(x *exchange) (done bool) {
	route, pc := x.route, &x.snap.Config.Policies
	if x.dry != nil || !policy.Sample(pc.CrossCheck) || !route.Query.Compiled() {
		return false
	}
	// Topdown reads the whole document, request included, which the compiled evaluator may
	// have been spared. A compiled policy that reads no request was given none: topdown gets
	// the request as it is now, and answers alike unless the policy does read it after all.
	captured := x.captured
	if captured == nil {
		captured = x.in.Capture(&x.ctx.Request, &x.meta)
	}
	reqObj := captured.Object()
	s.xc.Offer(policy.CrossCheckJob{
		Route: route.Name, DecisionID: x.rec.DecisionID, Query: route.Query,
		Input:    input.Document(reqObj, &x.meta, x.filtersInput()),
		Decision: x.dec, Err: x.policyErr, Timeout: min(route.Timeout, maxShadowTime), Demote: pc.OnDivergence == "opa",
	})
	return false
}
