package server

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/delivery"
)

// Queue durably stores a queued route's request (delivery.Dispatcher implements it).
// Enqueue returns nil only once the record is durable; delivery.ErrFull when the store
// is full.
type Queue interface {
	Enqueue(ctx context.Context, r *delivery.Record) error
}

// queueRetryAfter is the Retry-After of a 503 from a queued route whose store failed.
const queueRetryAfter = "5"

// enqueue is a queued route's last stage: the request as it would be forwarded is stored,
// then answered 202 with its delivery id. Nothing is acknowledged that is not stored: a
// store that fails or is full answers 503 + Retry-After. A dedupe key is delivered once
// stored. Response-phase filters do not run: there is no upstream answer to show them.
// Reads x.dec (upstream_headers) and x.claim; writes the request (as forwarded), rec; on a
// queued route it always ends the request, on any other it does nothing.
func (s *Server) enqueue(x *exchange) (done bool) {
	route := x.route
	if !route.Config.Queued() {
		return false
	}
	ctx, rec := x.ctx, &x.rec
	s.releaseInstances(x)
	req := &ctx.Request
	x.setForwarding()
	if err := x.fwd.prepare(req, route, &x.meta); err != nil {
		// As on a direct route: nothing can be forwarded, so nothing is stored.
		s.settle(x, time.Now(), false)
		writeError(ctx, fasthttp.StatusBadGateway, "upstream unavailable")
		rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeUpstream, fasthttp.StatusBadGateway, err.Error()
		return true
	}
	r := &delivery.Record{
		ID: delivery.NewID(), Route: rec.Route, DecisionID: rec.DecisionID, ReceivedAt: rec.Time, NextAt: time.Now(),
		Method: string(req.Header.Method()), URI: strings.TrimPrefix(string(req.Header.RequestURI()), route.BasePath),
		Body: append([]byte(nil), req.Body()...),
	}
	for k, v := range req.Header.All() {
		// The target (route base path included) is the URI; the upstream's Host is set at
		// delivery; Content-Length follows the body.
		if bytes.EqualFold(k, []byte("Host")) || bytes.EqualFold(k, []byte("Content-Length")) {
			continue
		}
		r.Headers = append(r.Headers, delivery.Header{Name: string(k), Value: string(v)})
	}
	err := errNoQueue
	if s.o.Queue != nil {
		err = s.o.Queue.Enqueue(x.dc, r)
	}
	s.settle(x, time.Now(), err == nil)
	if err != nil {
		s.log.Warn("delivery store refused a queued request; answered 503", "route", rec.Route, "decision_id", rec.DecisionID, "err", err)
		ctx.Response.Reset()
		ctx.Response.Header.Set("Retry-After", queueRetryAfter)
		msg := "delivery store unavailable"
		if errors.Is(err, delivery.ErrFull) {
			msg = "delivery store full"
		}
		writeError(ctx, fasthttp.StatusServiceUnavailable, msg)
		rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeUnavailable, fasthttp.StatusServiceUnavailable, err.Error()
		return true
	}
	ctx.Response.Reset()
	ctx.SetStatusCode(fasthttp.StatusAccepted)
	ctx.Response.Header.Set(delivery.HeaderID, r.ID)
	ctx.SetContentType("application/json")
	ctx.SetBodyString(`{"delivery_id":"` + r.ID + `"}`)
	rec.Outcome, rec.Status, rec.DeliveryID = decisionlog.OutcomeQueued, fasthttp.StatusAccepted, r.ID
	return true
}

var errNoQueue = errors.New("no delivery store is open")
