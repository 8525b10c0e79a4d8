package server

import (
	"context"
	"errors"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/input"
	"github.com/hookwall/hookwall/engine/snapshot"
)

// runFilters runs the route's filters in order on the request. done means the response is
// written (a filter denied, or failed with on_error = "deny").
func (s *Server) runFilters(rctx context.Context, ctx *fasthttp.RequestCtx, route *snapshot.Route, x *exchange, meta *input.Meta) (done bool) {
	rec := &x.rec
	x.fx = filter.Exchange{
		Req: &ctx.Request, Resp: &ctx.Response, Route: route.Name,
		RemoteAddr: ctx.RemoteAddr().String(), Scheme: meta.Scheme, SetLabel: x.setLabel,
	}
	fstart := time.Now()
	defer func() { rec.FilterMicros = time.Since(fstart).Microseconds() }()
	for _, f := range route.Filters {
		x.curFilter = f.Name()
		t0 := time.Now()
		inst, err := f.Acquire(rctx)
		next := false
		if err == nil {
			// A guest that fails half-way may leave a half-changed request; with on_error =
			// "skip" the request goes on, so it goes on as it was before this filter.
			var saved *fasthttp.Request
			if f.OnError == "skip" {
				saved = fasthttp.AcquireRequest()
				ctx.Request.CopyTo(saved)
			}
			next, err = inst.HandleRequest(rctx, &x.fx)
			if saved != nil {
				if err != nil {
					saved.CopyTo(&ctx.Request)
					ctx.Response.Reset()
				}
				fasthttp.ReleaseRequest(saved)
			}
			if err == nil && next && !f.HasResponsePhase() {
				inst.Release() // nothing left to call: free the instance before the upstream call
			} else {
				x.instances = append(x.instances, inst)
			}
		}
		d := time.Since(t0)
		fr := decisionlog.FilterResult{Name: f.Name(), Micros: d.Microseconds()}
		kind := ""
		if err != nil {
			kind = errKind(err)
			fr.Error = err.Error()
		}
		if s.o.Observer != nil {
			s.o.Observer.Filter(route.Name, f.Name(), d, kind)
		}
		switch {
		case err != nil && f.OnError == "skip":
			fr.Outcome = "skipped"
			rec.Filters = append(rec.Filters, fr)
			s.log.Warn("filter failed; on_error=skip continues", "filter", f.Name(), "route", route.Name, "decision_id", rec.DecisionID, "err", err)
			continue
		case err != nil:
			fr.Outcome = "error"
			rec.Filters = append(rec.Filters, fr)
			s.log.Error("filter failed; on_error=deny refuses", "filter", f.Name(), "route", route.Name, "decision_id", rec.DecisionID, "err", err)
			s.releaseInstances(x)
			st := fasthttp.StatusInternalServerError
			if kind == filter.KindTimeout || kind == filter.KindPool {
				st = fasthttp.StatusServiceUnavailable
			}
			ctx.Response.Reset()
			writeError(ctx, st, "filter error")
			rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, st, err.Error()
			return true
		case !next:
			fr.Outcome = "denied"
			rec.Filters = append(rec.Filters, fr)
			rec.Reasons = append(rec.Reasons, "filter "+f.Name()+" denied")
			// The guest wrote the response; the response phase of the filters before it runs.
			x.instances = x.instances[:len(x.instances)-1]
			inst.Release()
			s.finishFilters(rctx, x, route, false)
			if ctx.Response.StatusCode() == fasthttp.StatusOK && len(ctx.Response.Body()) == 0 {
				// A guest that ended the request without a status must not look like success.
				ctx.SetStatusCode(fasthttp.StatusForbidden)
			}
			rec.Outcome, rec.Status = decisionlog.OutcomeFiltered, ctx.Response.StatusCode()
			return true
		default:
			fr.Outcome = "next"
			rec.Filters = append(rec.Filters, fr)
		}
	}
	return false
}

// finishFilters runs handle_response in reverse order and returns the instances to their
// pools. isError tells the guests that the response is the gateway's, not the upstream's.
func (s *Server) finishFilters(rctx context.Context, x *exchange, route *snapshot.Route, isError bool) {
	for i := len(x.instances) - 1; i >= 0; i-- {
		inst := x.instances[i]
		if err := inst.HandleResponse(rctx, &x.fx, isError); err != nil {
			s.log.Warn("filter response phase failed", "route", route.Name, "decision_id", x.rec.DecisionID, "err", err)
		}
		inst.Release()
	}
	x.instances = x.instances[:0]
}

// releaseInstances returns the instances without a response phase.
func (s *Server) releaseInstances(x *exchange) {
	for _, inst := range x.instances {
		inst.Release()
	}
	x.instances = x.instances[:0]
}

func errKind(err error) string {
	var fe *filter.Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return "error"
}
