package server

import (
	"bytes"
	"context"
	"errors"
	"iter"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/internal/httpsyntax"
	"github.com/hookwall/hookwall/engine/internal/input"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
)

// hopHeaders are connection-level and never forwarded. Connection comes first
// (hopConnection).
var hopHeaders = httpsyntax.HopByHop

// forwardUpstream is a direct route's last stage: the request, as the filters left it, goes
// to the route's upstream, and the upstream's answer, through the filters' response phase, is
// the answer. A dedupe key is delivered when the upstream answers 2xx, released otherwise.
// Reads x.dec (upstream_headers), x.claim, x.instances, x.fx; writes the request, the response,
// rec; always ends the request (502, or 504 on a timeout, when no answer came).
func (s *Server) forwardUpstream(x *exchange) (done bool) {
	ctx, rec, route := x.ctx, &x.rec, x.route
	x.setForwarding()
	ustart := x.clock()
	status, uerr := s.forward(ctx, route, &x.meta, &x.fwd, len(x.instances) > 0 || x.fx.RespChanged)
	uend := x.clock()
	ud := uend.Sub(ustart)
	rec.UpstreamMicros = ud.Microseconds()
	if s.o.Observer != nil {
		s.o.Observer.Upstream(route.Name, ud, uerr != nil)
	}
	s.settle(x, uend, uerr == nil && status >= 200 && status < 300)
	if uerr != nil {
		s.log.Warn("upstream failed", "route", route.Name, "decision_id", rec.DecisionID, "err", uerr)
		st := fasthttp.StatusBadGateway
		if errors.Is(uerr, fasthttp.ErrTimeout) || errors.Is(uerr, context.DeadlineExceeded) {
			st = fasthttp.StatusGatewayTimeout
		}
		ctx.Response.Reset()
		writeError(ctx, st, "upstream unavailable")
		s.finishFilters(x.dc, x, route, true)
		rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeUpstream, st, uerr.Error()
		return true
	}
	if s.finishFilters(x.dc, x, route, false) {
		return true // a response phase failed with on_error = "deny": the answer is the gateway's 502
	}
	rec.Outcome, rec.Status = decisionlog.OutcomeAllowed, ctx.Response.StatusCode()
	return true
}

// forward sends ctx.Request (as the filters left it) to the route's upstream and leaves the
// upstream's answer in ctx.Response. It returns the upstream status, or an error when no
// answer came (refused, reset, timeout).
//
// When filters ran, they may already have written response headers or body (http-wasm's
// middleware model): the upstream's answer is then merged into that response instead of
// replacing it.
func (s *Server) forward(ctx *fasthttp.RequestCtx, route *snapshot.Route, meta *input.Meta, fw *forwarding, merge bool) (int, error) {
	req := &ctx.Request
	if err := fw.prepare(req, route, meta); err != nil {
		return 0, err
	}
	req.Header.SetHost(route.Host)
	req.UseHostHeader = true
	// The request keeps the scheme it arrived with; the HostClient refuses one that differs
	// from the upstream's (https listener → http upstream, or the reverse).
	req.URI().SetScheme(route.Scheme)
	// A URI's userinfo becomes an Authorization header the policy never saw when the client
	// writes the request. framing refuses the Host that would give it one; none goes out.
	if u := req.URI(); len(u.Username()) > 0 || len(u.Password()) > 0 {
		u.SetUsername("")
		u.SetPassword("")
	}
	req.SetTimeout(route.Timeout)
	// A body sent without a Content-Type goes on without one: fasthttp would name it
	// application/octet-stream.
	req.Header.SetNoDefaultContentType(true)

	resp := &ctx.Response
	if merge {
		resp = fasthttp.AcquireResponse()
		defer fasthttp.ReleaseResponse(resp)
		// An answer without a Content-Type is merged without one: fasthttp would name it
		// text/plain, and the client would get a header the upstream never sent.
		resp.Header.SetNoDefaultContentType(true)
	}
	if err := route.Client.Do(req, resp); err != nil {
		return 0, err
	}
	if resp.StatusCode() < 200 {
		// fasthttp skips interim answers but for 101; the gateway strips Upgrade, so a
		// Switching Protocols is an upstream that broke the exchange, not an answer to relay.
		// fasthttp put the switched connection back in its pool: it refuses its next
		// request (lazyconn read the 101), which goes on another.
		resp.Reset()
		return 0, errInterimAnswer
	}
	dropTrailers(&resp.Header)
	if !tokenNames(resp.Header.All()) {
		// As an answer fasthttp cannot parse (a bare CR, a line without a colon): a field
		// name that is not a token would reach the client as the upstream wrote it.
		resp.Reset()
		return 0, errBadFieldName
	}
	stripHopResp(&resp.Header)
	if merge {
		filter.MergeResponse(&ctx.Response, resp)
	}
	return resp.StatusCode(), nil
}

var errInterimAnswer = errors.New("the upstream answered with an interim (1xx) status and nothing after it")

var errBadFieldName = errors.New("the upstream answered with a header field name that is not a token")

// tokenNames reports whether every name of all is an HTTP token (RFC 9110 section 5.1).
func tokenNames(all iter.Seq2[[]byte, []byte]) bool {
	for k := range all {
		if !httpsyntax.IsToken(k) {
			return false
		}
	}
	return true
}

// dropTrailers drops the fields of a chunked answer's trailer section: relayed, fasthttp
// would write them among the header fields (deleting Trailer, as stripHopResp does, moves
// them there), where the client would take them for the upstream's header. A field of the
// header section that shares a name with one stays. Few answers carry trailers: the others
// cost one length check.
func dropTrailers(h *fasthttp.ResponseHeader) {
	keys := h.PeekTrailerKeys()
	if len(keys) == 0 {
		return
	}
	// Copies: deleting fields rewrites the header's buffers.
	names := make([][]byte, len(keys))
	for i, k := range keys {
		names[i] = bytes.Clone(k)
	}
	var upfront [][2][]byte // the header section's fields of those names, put back after
	for k, v := range h.All() {
		for _, n := range names {
			if bytes.EqualFold(k, n) {
				upfront = append(upfront, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
				break
			}
		}
	}
	for _, n := range names {
		h.DelBytes(n) // both sections
	}
	h.Del(fasthttp.HeaderTrailer) // nothing is announced: a name added now is a header field
	for _, f := range upfront {
		h.AddBytesKV(f[0], f[1])
	}
}

var xffName = []byte("X-Forwarded-For")

// forwardedFor returns every X-Forwarded-For line joined with ", " in arrival order: a proxy
// may add its own line after the one the client sent, so the first line alone is not the
// proxy's word. Header names are normalised by the server, so one spelling covers them all.
// A single line is returned as is (valid until the handler returns); several are copied.
func forwardedFor(h *fasthttp.RequestHeader) []byte {
	var out []byte
	n := 0
	for k, v := range h.All() {
		if !bytes.Equal(k, xffName) {
			continue
		}
		switch n++; n {
		case 1:
			out = v
		case 2:
			out = append(append(append([]byte(nil), out...), ", "...), v...)
		default:
			out = append(append(out, ", "...), v...)
		}
	}
	return out
}

// stripHop removes the hop-by-hop headers. Most requests carry none: one pass over the
// names finds that, and which ones a request carries, where deleting each name would scan
// the headers once per name. A chunked body may carry trailers, which the pass does not
// see: those take the long way.
//
// present is hopsIn's marks for h (prepare takes them from its one pass, forwardedNames).
func stripHop(h *fasthttp.RequestHeader, present uint16) {
	if h.ContentLength() < 0 {
		stripHopAll(h)
		return
	}
	if present != 0 {
		stripRequestHops(h, present)
	}
}

// stripHopAll removes the hop-by-hop headers, and those the Connection header names.
func stripHopAll(h *fasthttp.RequestHeader) { stripRequestHops(h, allHops) }

// stripRequestHops is stripHops for a request. The Connection fields are gathered here, on
// the concrete header, into a list on the stack: gathered through the interface, the
// iteration's closure and the list went to the heap for every request with a Connection
// field (most clients send "Connection: keep-alive").
func stripRequestHops(h *fasthttp.RequestHeader, present uint16) {
	var lists [2][]byte
	stripHops(h, present, connectionLists(h.All(), present, lists[:0]), false)
}

// stripHopResp is stripHop for the upstream's response. Its Connection: close ended the
// upstream's connection, which fasthttp's client has closed by now; the client's connection
// is the gateway's to keep, so it goes too.
func stripHopResp(h *fasthttp.ResponseHeader) {
	if h.ContentLength() < 0 {
		stripHopRespAll(h)
		return
	}
	if present := hopsIn(h.All()); present != 0 {
		stripResponseHops(h, present)
	}
}

func stripHopRespAll(h *fasthttp.ResponseHeader) { stripResponseHops(h, allHops) }

// stripResponseHops is stripRequestHops for a response.
func stripResponseHops(h *fasthttp.ResponseHeader, present uint16) {
	var lists [2][]byte
	stripHops(h, present, connectionLists(h.All(), present, lists[:0]), true)
}

// connectionLists appends to dst the values of the Connection fields among all, when
// present marks Connection (hopsIn). The values stay where they are: deleting a header
// only moves fields.
//
// Every Connection field counts, not the first alone: several make one list (RFC 9110
// section 5.3), and a name listed only in a later one is as much the sender's hop-by-hop.
func connectionLists(all iter.Seq2[[]byte, []byte], present uint16, dst [][]byte) [][]byte {
	if present&hopConnection != 0 {
		for k, v := range all {
			if bytes.EqualFold(k, []byte("Connection")) {
				dst = append(dst, v)
			}
		}
	}
	return dst
}

// hopHeader is what stripHops needs of a request's or a response's header.
type hopHeader interface {
	DelBytes(key []byte)
	Del(key string)
}

// stripHops removes the hop-by-hop headers present marks (hopsIn), and the names the
// Connection fields' values (lists, connectionLists) give. A response (resp) keeps its
// Transfer-Encoding field (the framing the server writes the body with), and a "close"
// that Connection lists is not taken for a name. Host, Content-Length and Content-Type are
// never taken for one either: they are meant for every recipient (RFC 9110 section 7.6.1
// forbids listing them), and the policy judged the request with them.
func stripHops(h hopHeader, present uint16, lists [][]byte, resp bool) {
	for _, c := range lists {
		for name := range bytes.SplitSeq(c, []byte(",")) {
			if name = bytes.TrimSpace(name); len(name) > 0 && (!resp || !bytes.EqualFold(name, []byte("close"))) && !endToEnd(name) {
				h.DelBytes(name)
			}
		}
	}
	for i, k := range hopHeaders {
		if present&(1<<i) != 0 && (!resp || k != "Transfer-Encoding") {
			h.Del(k)
		}
	}
}

// hopConnection and allHops are hopsIn's marks: Connection's (the first of hopHeaders) and
// every name's.
const (
	hopConnection uint16 = 1
	allHops       uint16 = 1<<len(hopHeaders) - 1
)

// hopsIn marks which hopHeaders are among the names of all (bit i for hopHeaders[i], any
// case).
func hopsIn(all iter.Seq2[[]byte, []byte]) (present uint16) {
	for k := range all {
		present |= marksOf(k).hop
	}
	return present
}

// endToEnd reports whether a name a Connection field lists is one of the fields every
// recipient needs as it came (stripHops keeps them).
func endToEnd(name []byte) bool {
	return bytes.EqualFold(name, []byte("host")) || bytes.EqualFold(name, []byte("content-length")) ||
		bytes.EqualFold(name, []byte("content-type"))
}
