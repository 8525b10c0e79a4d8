package server

import (
	"context"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/policy"
)

// ShadowObserver is implemented by an Observer that also counts shadow-policy evaluations.
// agree reports whether the shadow would have answered as the live policy did; failed that
// the shadow's evaluation returned an error (agree is then false).
type ShadowObserver interface {
	Shadow(route string, agree, failed bool)
}

// maxShadowTime bounds a shadow evaluation (and the route timeout bounds it too): a slow
// shadow policy under trial delays requests by at most this much and never fails them.
const maxShadowTime = time.Second

// evalShadowPolicy evaluates the route's shadow policy on the live policy's document, once
// the live policy decided and before its decision is acted on. Reads x.doc, x.dec and
// x.policyErr, which it never changes; writes rec.Shadow; never ends the request.
func (s *Server) evalShadowPolicy(x *exchange) (done bool) {
	if x.route.Shadow != nil {
		start := time.Now()
		s.shadow(x.route, x.doc, &x.dec, x.policyErr, x)
		x.giveBack(time.Since(start))
	}
	return false
}

// giveBack moves the live request's deadline (x.dc, counted from its arrival) later by d,
// the time the shadow took: the shadow has a deadline of its own, and the stages after it
// (the state store, a queued route's enqueue, the filters' response phase) must not find
// the live request's spent by it. A context that nothing asked for Done is moved as it is;
// one whose timer may have fired during the shadow is replaced by a new one (the old one is
// ended: every call handed it has returned). A deadline already past before the shadow
// stays past.
func (x *exchange) giveBack(d time.Duration) {
	c := x.dc
	if c == nil || d <= 0 {
		return
	}
	c.mu.Lock()
	inPlace := c.done == nil && c.err == nil
	deadline := c.deadline.Add(d)
	if inPlace {
		c.deadline = deadline
	}
	c.mu.Unlock()
	if inPlace {
		return
	}
	nc := newDeadlineCtx(deadline)
	nc.sens = c.sens
	c.cancel()
	x.dc = nc
}

// shadow evaluates route.Shadow on doc with its own deadline, so it cannot use up the live
// request's, and records the outcome. Errors are recorded, never returned.
func (s *Server) shadow(route *snapshot.Route, doc ast.Value, live *policy.Decision, liveErr error, x *exchange) {
	ctx, cancel := context.WithTimeout(context.Background(), min(route.Timeout, maxShadowTime))
	defer cancel()
	// The credentials a shadow policy's builtins are handed are masked in the log as the
	// live policy's are (it runs here, on this goroutine, before the record is written).
	ctx = context.WithValue(ctx, policy.SensitiveKey{}, &x.sens)
	sd, err := evalShadow(ctx, route.Shadow, doc)
	sh := &x.rec.Shadow
	sh.Policy = route.Shadow.Package()
	if err != nil {
		sh.Error = policy.RedactQuoted(err.Error())
	} else {
		sh.Allow, sh.Deny, sh.Status = sd.Allow, sd.Deny, sd.Status
	}
	lf, ls := verdict(live, liveErr)
	sf, ss := verdict(&sd, err)
	sh.Agree = err == nil && lf == sf && ls == ss
	if so, ok := s.o.Observer.(ShadowObserver); ok {
		so.Shadow(route.Name, sh.Agree, err != nil)
	}
	if !sh.Agree {
		s.log.Debug("shadow policy disagrees", "route", route.Name, "shadow", sh.Policy, "decision_id", x.rec.DecisionID, "live_forward", lf, "shadow_forward", sf, "err", err)
	}
}

// evalShadow evaluates the shadow policy; a panic in its evaluation is its error, never the
// live request's.
func evalShadow(ctx context.Context, q *policy.Query, doc ast.Value) (d policy.Decision, err error) {
	defer func() {
		if p := recover(); p != nil {
			d, err = policy.Decision{}, fmt.Errorf("shadow policy %s: evaluation panicked: %v", q.Package(), p)
		}
	}()
	return q.Eval(ctx, doc, nil)
}

// verdict is what a decision does to the request: forward, or refuse with a status.
func verdict(d *policy.Decision, err error) (forward bool, status int) {
	switch {
	case err != nil:
		return false, 500
	case d.Denied():
		return false, d.Status
	}
	return true, 0
}
