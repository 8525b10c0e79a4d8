package server

import (
	"context"
	"errors"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
)

// runFilters runs the request phase of the route's filters, in order, on the request (which
// they may change, and whose response they may write). Writes x.instances (those with a
// response phase still to run), x.fx, x.labels, rec.Filters, rec.FilterMicros; ends the
// request when a filter denies it (its answer stands, after the response phase of the
// filters before it), fails with on_error = "deny" (500, or 503 on a timeout), or finds its
// pool exhausted (503, whatever on_error says).
func (s *Server) runFilters(x *exchange) (done bool) {
	route := x.route
	if len(route.Filters) == 0 {
		return false
	}
	ctx, rec, rctx := x.ctx, &x.rec, x.dc
	if x.setLabelFn == nil {
		x.setLabelFn = x.setLabel
	}
	x.fx = filter.Exchange{
		Req: &ctx.Request, Resp: &ctx.Response, Route: route.Name,
		Source: ctx.RemoteAddr(), Scheme: x.meta.Scheme, SetLabel: x.setLabelFn,
	}
	// One clock reading per filter and one more: each filter's end is the next one's start,
	// and, when every filter passed, the end of the filters.
	t0 := x.clock()
	fstart := t0
	defer func() {
		end := t0
		if done { // a refusal, and the response phases it ran, count too
			end = x.clock()
		} else {
			x.filtersEnd = end // the policy's start
		}
		rec.FilterMicros = end.Sub(fstart).Microseconds()
	}()
	for _, f := range route.Filters {
		x.curFilter = f.Name()
		inst, err := f.Acquire(rctx)
		next := false
		if err == nil {
			// A guest that fails half-way may leave a half-changed request and response; with
			// on_error = "skip" the request goes on, so both go on as they were before this
			// filter. The response is copied only when an earlier filter changed it: until
			// then it is empty, and a Reset restores it.
			var saved *fasthttp.Request
			var savedResp *fasthttp.Response
			respChanged := x.fx.RespChanged
			if f.OnError == config.OnErrorSkip {
				saved = fasthttp.AcquireRequest()
				ctx.Request.CopyTo(saved)
				if respChanged {
					savedResp = fasthttp.AcquireResponse()
					ctx.Response.CopyTo(savedResp)
				}
			}
			nLabels := len(x.labels)
			next, err = inst.HandleRequest(rctx, &x.fx)
			if saved != nil {
				if err != nil {
					// Its labels too: the policy must not read what a filter that did not
					// finish said of the request.
					saved.CopyTo(&ctx.Request)
					if savedResp != nil {
						savedResp.CopyTo(&ctx.Response)
					} else {
						ctx.Response.Reset()
					}
					x.fx.RespChanged = respChanged
					clear(x.labels[nLabels:])
					x.labels = x.labels[:nLabels]
				}
				fasthttp.ReleaseRequest(saved)
				if savedResp != nil {
					fasthttp.ReleaseResponse(savedResp)
				}
			}
			if err != nil || (next && !f.HasResponsePhase()) {
				// Failed (it is spent), or nothing left to call: free the instance before the
				// upstream call.
				inst.Release()
			} else {
				x.instances = append(x.instances, inst)
			}
		}
		end := x.clock()
		d := end.Sub(t0)
		t0 = end
		fr := decisionlog.FilterResult{Name: f.Name(), Micros: d.Microseconds()}
		var kind filter.ErrorKind
		if err != nil {
			kind = errKind(err)
			fr.Error = err.Error()
		}
		if s.o.Observer != nil {
			s.o.Observer.Filter(route.Name, f.Name(), d, string(kind))
		}
		switch {
		case err != nil && f.OnError == config.OnErrorSkip && kind != filter.KindPool:
			// A full pool is not the filter's failure but load: skipping the filter then
			// would let a flood switch it off, so it is refused whatever on_error says.
			fr.Outcome = decisionlog.FilterSkipped
			rec.Filters = append(rec.Filters, fr)
			s.log.Warn("filter failed; on_error=skip continues", "filter", f.Name(), "route", route.Name, "decision_id", rec.DecisionID, "err", err)
			continue
		case err != nil:
			fr.Outcome = decisionlog.FilterError
			rec.Filters = append(rec.Filters, fr)
			msg := "filter failed; on_error=deny refuses"
			if kind == filter.KindPool {
				msg = "filter pool exhausted; refused"
			}
			s.log.Error(msg, "filter", f.Name(), "route", route.Name, "decision_id", rec.DecisionID, "err", err)
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
			fr.Outcome = decisionlog.FilterDenied
			rec.Filters = append(rec.Filters, fr)
			rec.Reasons = append(rec.Reasons, "filter "+f.Name()+" denied")
			// The guest wrote the response; the response phase of the filters before it runs.
			x.instances = x.instances[:len(x.instances)-1]
			inst.Release()
			if s.finishFilters(rctx, x, route, false) {
				return true
			}
			if ctx.Response.StatusCode() == fasthttp.StatusOK && len(ctx.Response.Body()) == 0 {
				// A guest that ended the request without a status must not look like success.
				ctx.SetStatusCode(fasthttp.StatusForbidden)
			}
			rec.Outcome, rec.Status = decisionlog.OutcomeFiltered, ctx.Response.StatusCode()
			return true
		default:
			fr.Outcome = decisionlog.FilterNext
			rec.Filters = append(rec.Filters, fr)
		}
	}
	return false
}

// finishFilters runs handle_response in reverse order and returns the instances to their
// pools. isError tells the guests that the response is the gateway's, not the upstream's.
//
// A guest that fails half-way may leave a half-changed response: a redaction filter that
// traps before it writes would let the upstream's answer through as it came. So when the
// response is the upstream's (or a filter's own, !isError), a failure with on_error = "deny"
// replaces it with the gateway's 502, which the earlier filters then see as an error response,
// and replaced reports it (the record says so too). With on_error = "skip", or when the
// response is already the gateway's own error answer, the response goes on as it was before
// the failing call.
func (s *Server) finishFilters(rctx context.Context, x *exchange, route *snapshot.Route, isError bool) (replaced bool) {
	var saved *fasthttp.Response
	for i := len(x.instances) - 1; i >= 0; i-- {
		inst := x.instances[i]
		f := inst.Filter()
		if !f.HasResponsePhase() {
			inst.Release()
			continue
		}
		restore := isError || onError(route, f) == config.OnErrorSkip
		if restore {
			if saved == nil {
				saved = fasthttp.AcquireResponse()
			}
			x.fx.Resp.CopyTo(saved)
		}
		t0 := time.Now()
		err := inst.HandleResponse(rctx, &x.fx, isError)
		inst.Release()
		if err == nil {
			continue
		}
		kind := errKind(err)
		if s.o.Observer != nil {
			s.o.Observer.Filter(route.Name, f.Name(), time.Since(t0), string(kind))
		}
		if restore {
			saved.CopyTo(x.fx.Resp)
			x.noteResponseFailure(f.Name(), decisionlog.FilterSkipped, err)
			s.log.Warn("filter response phase failed; the response goes on as it was before the filter", "filter", f.Name(), "route", route.Name, "decision_id", x.rec.DecisionID, "err", err)
			continue
		}
		x.noteResponseFailure(f.Name(), decisionlog.FilterError, err)
		s.log.Error("filter response phase failed; on_error=deny replaces the response", "filter", f.Name(), "route", route.Name, "decision_id", x.rec.DecisionID, "err", err)
		x.fx.Resp.Reset()
		writeErrorTo(x.fx.Resp, fasthttp.StatusBadGateway, "filter error")
		rec := &x.rec
		rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, fasthttp.StatusBadGateway, err.Error()
		isError, replaced = true, true
	}
	x.instances = x.instances[:0]
	if saved != nil {
		fasthttp.ReleaseResponse(saved)
	}
	return replaced
}

// onError returns the route's on_error for filter f: "deny" unless the route says "skip".
func onError(route *snapshot.Route, f *filter.Filter) config.OnError {
	for _, rf := range route.Filters {
		if rf.Filter == f {
			return rf.OnError
		}
	}
	return config.OnErrorDeny
}

// noteResponseFailure marks the filter's entry in the decision log with its response phase's
// failure.
func (x *exchange) noteResponseFailure(name string, outcome decisionlog.FilterOutcome, err error) {
	fs := x.rec.Filters
	for i := len(fs) - 1; i >= 0; i-- {
		if fs[i].Name == name {
			fs[i].Outcome, fs[i].Error = outcome, err.Error()
			return
		}
	}
}

// releaseInstances returns the instances without a response phase.
func (s *Server) releaseInstances(x *exchange) {
	for _, inst := range x.instances {
		inst.Release()
	}
	x.instances = x.instances[:0]
}

// kindOther is the kind of a filter call's failure that is not a *filter.Error.
const kindOther filter.ErrorKind = "error"

func errKind(err error) filter.ErrorKind {
	var fe *filter.Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return kindOther
}
