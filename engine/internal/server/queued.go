package server

import (
	"bytes"
	"context"
	"errors"
	"time"
	"unsafe"

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
	r := &delivery.Record{ID: delivery.NewID(), Route: rec.Route, DecisionID: rec.DecisionID, ReceivedAt: rec.Time, NextAt: time.Now()}
	copyRequest(r, req, route.BasePath)
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
	ctx.Response.AppendBodyString(`{"delivery_id":"`)
	ctx.Response.AppendBodyString(r.ID)
	ctx.Response.AppendBodyString(`"}`)
	rec.Outcome, rec.Status, rec.DeliveryID = decisionlog.OutcomeQueued, fasthttp.StatusAccepted, r.ID
	return true
}

var errNoQueue = errors.New("no delivery store is open")

// copyRequest copies req, as it is forwarded, into r: its method, its target without the
// route's base path, its headers (but Host, set at delivery, and Content-Length, which
// follows the body) and its body. They share one allocation: the strings view its head,
// which nothing writes once they are made, and the body is its tail, r's to keep. A copy
// per string and per header would be a dozen allocations more for every queued request.
func copyRequest(r *delivery.Record, req *fasthttp.Request, basePath string) {
	h := &req.Header
	method, target, body := h.Method(), h.RequestURI(), req.Body()
	if bytes.HasPrefix(target, unsafeBytes(basePath)) {
		target = target[len(basePath):]
	}
	size := len(method) + len(target)
	for k, v := range h.All() {
		if stored(k) {
			size += len(k) + len(v)
		}
	}
	b := make([]byte, 0, size+len(body))
	b = append(append(b, method...), target...)
	// Offsets first: the strings are made once b is complete. Most requests carry fewer
	// than 32 headers: their offsets stay on the stack.
	type span struct{ k, v, end int }
	var small [32]span
	spans := small[:0]
	for k, v := range h.All() {
		if stored(k) {
			start := len(b)
			b = append(append(b, k...), v...)
			spans = append(spans, span{start, start + len(k), len(b)})
		}
	}
	text := unsafe.String(unsafe.SliceData(b), len(b))
	r.Method, r.URI = text[:len(method)], text[len(method):len(method)+len(target)]
	r.Headers = make([]delivery.Header, len(spans))
	for i, sp := range spans {
		r.Headers[i] = delivery.Header{Name: text[sp.k:sp.v], Value: text[sp.v:sp.end]}
	}
	if len(body) > 0 {
		b = append(b, body...)
		r.Body = b[len(text):len(b):len(b)]
	}
}

// stored reports whether a header is kept in a queued request's record: the upstream's
// Host is set at delivery, and Content-Length follows the body.
func stored(name []byte) bool {
	return !bytes.EqualFold(name, []byte("Host")) && !bytes.EqualFold(name, []byte("Content-Length"))
}
