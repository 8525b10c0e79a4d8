package server

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/internal/input"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/policy"
	"github.com/hookwall/hookwall/engine/state"
)

// exchange is one request's working state, pooled. The stages (stages.go) read and write it
// in order; each field says which stage writes it.
type exchange struct {
	// Set before the stages run.
	ctx  *fasthttp.RequestCtx
	snap *snapshot.Snapshot
	dry  *dryRun // set by Evaluate only
	rec  decisionlog.Record
	in   input.Builder
	peer string // the connection's peer address, formatted once per request

	stage   int             // the index of the running stage
	pathBuf []byte          // the canonical path, when it is not the raw one (routePath)
	path    []byte          // path: the canonical path (it may view the target the filters change)
	rewrite bool            // path: the canonical path differs from the raw one
	route   *snapshot.Route // route
	dc      *deadlineCtx    // input: the request's deadline
	// spareDC is an earlier request's deadline context, ended and renewable (deadlineCtx.end):
	// the next request's, without an allocation. Kept across requests.
	spareDC  *deadlineCtx
	meta     input.Meta      // input (watch: Source)
	captured *input.Captured // capture: the request as received; nil when nothing reads it

	// filters
	instances []*filter.Instance
	fx        filter.Exchange
	labels    []label // in the order the filters set them
	curFilter string
	// filtersEnd is when the filters' request phase ended, all of them passing; zero when no
	// filter ran (the policy's start, evalPolicy).
	filtersEnd time.Time
	// setLabelFn is setLabel bound to this exchange, kept across requests (a method value
	// allocates).
	setLabelFn func(k, v string)

	doc       ast.Value       // policy: the input document; nil when the policy needs none
	dec       policy.Decision // policy
	policyErr error           // policy
	// sens is what the policy's builtins were handed as credentials (through dc), masked in
	// the decision log wherever a header carries them.
	sens policy.Sensitive

	check state.Check // obligations: what the state store is asked
	claim claim       // obligations: the dedupe key claimed, to settle

	fwd   forwarding // what the gateway sets on the forwarded request
	idBuf [32]byte
}

var exchangePool = sync.Pool{New: func() any { return &exchange{} }}

// label is one hookwall.set_label call. Labels are kept flat: input.filters is built from
// them only for a policy that reads it.
type label struct{ filter, key, value string }

// setLabel files a label under curFilter, the filter whose handle_request runs: the host
// traps set_label after next, so a response phase never sets one.
func (x *exchange) setLabel(k, v string) {
	x.labels = append(x.labels, label{x.curFilter, k, v})
}

// filtersInput returns input.filters: {"<filter>": {"labels": {key: value}}}, a later label
// of one key replacing an earlier one; nil when no filter set a label (none in labels).
func filtersInput(labels []label) ast.Object {
	if len(labels) == 0 {
		return nil
	}
	byFilter := map[string]ast.Object{}
	for _, l := range labels {
		obj := byFilter[l.filter]
		if obj == nil {
			obj = ast.NewObject()
			byFilter[l.filter] = obj
		}
		obj.Insert(ast.StringTerm(l.key), ast.StringTerm(l.value))
	}
	filters := ast.NewObject()
	for name, labels := range byFilter {
		filters.Insert(ast.StringTerm(name), ast.ObjectTerm(ast.Item(ast.StringTerm("labels"), ast.NewTerm(labels))))
	}
	return filters
}

// filterLabels returns the labels filter name set, nil when it set none.
func (x *exchange) filterLabels(name string) map[string]string {
	var out map[string]string
	for _, l := range x.labels {
		if l.filter == name {
			if out == nil {
				out = map[string]string{}
			}
			out[l.key] = l.value
		}
	}
	return out
}

func (x *exchange) reset() {
	x.ctx, x.snap = nil, nil
	x.rec.Reset()
	x.in.Reset()
	x.peer = ""
	x.stage = 0
	x.path, x.rewrite, x.route, x.dc, x.meta, x.captured = nil, false, nil, nil, input.Meta{}, nil
	x.instances = x.instances[:0]
	x.fx = filter.Exchange{}
	clear(x.labels)
	x.labels = x.labels[:0]
	x.curFilter, x.filtersEnd = "", time.Time{}
	x.doc, x.dec, x.policyErr = nil, policy.Decision{}, nil
	x.sens.Reset()
	x.check, x.claim = state.Check{}, claim{}
	x.fwd.reset()
}

// clock reads the time during the request: the arrival's wall clock (rec.Time) advanced by
// the monotonic clock, a reading of the monotonic clock only (about half of time.Now's
// cost). Durations and deadlines come out as time.Now would give them; a step of the wall
// clock during the request moves none of its times.
func (x *exchange) clock() time.Time {
	return x.rec.Time.Add(time.Since(x.rec.Time))
}

// cancel ends the request's deadline, once the stages are over, and keeps its context for
// the next request when nothing asked it for Done.
func (x *exchange) cancel() {
	if x.dc != nil && x.dc.end() {
		x.spareDC = x.dc
	}
}

// deadline returns the request's context, ending at deadline: the spare one renewed, or a
// new one.
func (x *exchange) deadline(deadline time.Time) *deadlineCtx {
	if c := x.spareDC; c != nil {
		x.spareDC = nil
		c.renew(deadline)
		return c
	}
	return newDeadlineCtx(deadline)
}

// sequentialDecisionID returns a unique decision id: the server's random prefix and a counter, 32 hex digits.
// It is an identifier, not a secret, so it need not cost a random read per request.
func (s *Server) sequentialDecisionID(buf *[32]byte) string {
	s.fillDecisionID(buf)
	return string(buf[:])
}

// fillDecisionID writes the next decision id into buf (sequentialDecisionID, idAndPeer).
func (s *Server) fillDecisionID(buf *[32]byte) {
	hex.Encode(buf[:16], s.idPrefix[:])
	n := s.idSeq.Add(1)
	for i := 31; i >= 16; i-- {
		buf[i] = hexDigits[n&0xf]
		n >>= 4
	}
}

// idAndPeer returns a new decision id (sequentialDecisionID) and the peer's address as
// net.IP's String writes it, in one allocation. Both outlive the request (the decision log's
// batch copies them, but the watcher and the cross-check may keep them), so they are not
// in the exchange's arena, which the next request reuses.
func (s *Server) idAndPeer(ctx *fasthttp.RequestCtx, buf *[32]byte) (id, peer string) {
	s.fillDecisionID(buf)
	var b [len(buf) + len("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")]byte
	text := string(appendIP(append(b[:0], buf[:]...), ctx.RemoteIP()))
	return text[:len(buf)], text[len(buf):]
}

// appendIP appends ip as ip.String() gives it, without String's allocation.
func appendIP(b []byte, ip net.IP) []byte {
	if len(ip) != net.IPv4len && len(ip) != net.IPv6len {
		return append(b, ip.String()...)
	}
	if p4 := ip.To4(); p4 != nil {
		ip = p4
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.AppendTo(b)
}

const hexDigits = "0123456789abcdef"

// randomDecisionID returns a random decision id, for evaluations outside a Server (hookwall eval).
func randomDecisionID(buf *[32]byte) string {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	hex.Encode(buf[:], raw[:])
	return string(buf[:])
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	// The request's one reading of the wall clock: fasthttp's, taken just before it called
	// the handler. Its monotonic reading is the base of every later reading (clock).
	start := ctx.Time()
	if start.IsZero() { // a RequestCtx no server filled in
		start = time.Now()
	}
	x := exchangePool.Get().(*exchange)
	rec := &x.rec
	rec.Time = start
	rec.DecisionID, x.peer = s.idAndPeer(ctx, &x.idBuf)
	rec.Method = x.in.String(ctx.Method())
	rec.Path = rawPath(ctx, &x.in) // routePath puts the canonical path in its place
	rec.RemoteIP = x.peer

	snap := s.o.Snapshots.Acquire()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in request", "decision_id", rec.DecisionID, "stage", x.stageName(), "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			// The client gets a 500 and will send the delivery again: a dedupe key claimed
			// and not yet settled is released, or the retry would get 409 until it expired.
			s.settle(x, time.Now(), false)
			s.releaseInstances(x)
			ctx.Response.Reset()
			writeError(ctx, fasthttp.StatusInternalServerError, "internal error")
			rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, fasthttp.StatusInternalServerError, "panic: "+fmt.Sprint(p)
		}
		clientFraming(ctx, rec.Method, x.fx.RespChanged)
		// Set last: the upstream's response replaced whatever was set before. Deleted first:
		// Set replaces the first of the upstream's copies and keeps the others.
		ctx.Response.Header.DelBytes(unsafeBytes(requestIDHeader))
		ctx.Response.Header.SetCanonical(unsafeBytes(requestIDHeader), unsafeBytes(rec.DecisionID))
		total := time.Since(start)
		rec.TotalMicros = total.Microseconds()
		if s.o.Observer != nil {
			s.o.Observer.Request(rec.Route, rec.Outcome, rec.Status, total)
		}
		if s.o.Watch != nil {
			ip := rec.RemoteIP
			if x.meta.RemoteIP == "" && snap != nil && input.TrustedPeer(ctx.RemoteAddr(), snap.Config.Server.Trusted()) {
				// Refused before the client's address behind the trusted proxy was read (bad
				// framing, a path refused): the peer is the proxy, not the client.
				ip = ""
			}
			s.o.Watch.Observe(rec.Route, ip, rec.Outcome, rec.Status, rec.Reasons, rec.Labels, start)
		}
		if snap != nil {
			maskCredentials(x, snap)
		}
		rec.Sensitive = x.sens.Values
		s.o.Log.Log(rec)
		if snap != nil {
			snap.Release()
		}
		x.reset()
		exchangePool.Put(x)
	}()
	if snap == nil {
		writeError(ctx, fasthttp.StatusServiceUnavailable, "not ready")
		rec.Outcome, rec.Status = decisionlog.OutcomeUnavailable, fasthttp.StatusServiceUnavailable
		return
	}
	rec.Revision, rec.PolicyRevision = snap.Revision, snap.Policies.Revision()
	x.ctx, x.snap = ctx, snap
	s.serve(x)
}

// maskCredentials applies the route's credential rules to the record whether or not its
// policy ran (a filter refused the request, watch blocked it, a filter failed, the method was
// refused): the values of the headers the route's policy or shadow hands to a credential
// builtin (snapshot.Route.CredHeaders) are noted as sensitive, so masked wherever the record
// carries them, and the path of a route whose policy reads a key from it
// (snapshot.Route.MaskedPath) is logged as the route's prefix followed by "***" unless a
// credential the policy was handed masks it already. A request no route took (refused
// before routing, or 404) has its path masked by the first route whose prefix starts it
// (maskedTarget). It allocates nothing: the names and masked paths are the snapshot's, the
// values the record's own.
func maskCredentials(x *exchange, snap *snapshot.Snapshot) {
	rec, r := &x.rec, x.route
	if r == nil {
		if m := maskedTarget(snap, rec.Path); m != "" {
			rec.Path, rec.PathMasked = m, true
		}
		return
	}
	for _, name := range r.CredHeaders {
		for i := range rec.Headers {
			h := &rec.Headers[i]
			if h.Value != "" && len(h.Name) == len(name) && strings.EqualFold(h.Name, name) && !slices.Contains(x.sens.Values, h.Value) {
				x.sens.Values = append(x.sens.Values, h.Value)
			}
		}
	}
	if r.MaskedPath != "" && !decisionlog.HoldsSensitive(rec.Path, x.sens.Values) {
		rec.Path, rec.PathMasked = r.MaskedPath, true
	}
}

// maskedTarget is the masked path (snapshot.Route.MaskedTarget) of the first of snap's
// routes whose prefix starts path and whose policy reads a key from the path, else "". It
// is for a path no route took: a target refused before routing is not canonical yet, so one
// that reaches a route's prefix only once made canonical ("/hooks//tg/<key>") keeps its path.
func maskedTarget(snap *snapshot.Snapshot, path string) string {
	for _, r := range snap.Routes {
		if m := r.MaskedTarget(path); m != "" {
			return m
		}
	}
	return ""
}

// clientFraming makes the answer one the client reads as the answer to its request, whatever
// the filters did, on every way a request ends. A filter's set_method changes ctx.Request,
// which is what is forwarded or queued; but fasthttp frames the answer by ctx.Request's
// method once the handler returns (no body after HEAD), and its client skips the body of an
// answer to a HEAD it sent: the client's POST turned HEAD by a filter would get a
// Content-Length and no body, its HEAD turned POST a body, which the client would read as
// the next answer on the connection. So the client's method (method, as received) goes back
// on ctx.Request, and a body is written unless the client sent HEAD.
//
// When a filter changed the response (filtered), the hop-by-hop fields it set go, and those
// its Connection field names: the upstream's were stripped on arrival (stripHopResp), before
// the filters' response phase.
func clientFraming(ctx *fasthttp.RequestCtx, method string, filtered bool) {
	if filtered {
		stripHopRespAll(&ctx.Response.Header)
	}
	if string(ctx.Request.Header.Method()) != method {
		ctx.Request.Header.SetMethod(method)
	}
	if !ctx.IsHead() {
		ctx.Response.SkipBody = false
	}
}

func writeError(ctx *fasthttp.RequestCtx, status int, msg string) {
	writeErrorTo(&ctx.Response, status, msg)
}

func writeErrorTo(resp *fasthttp.Response, status int, msg string) {
	resp.SetStatusCode(status)
	resp.Header.SetContentType("application/json")
	resp.SetBodyString(`{"error":"` + msg + `"}`)
}

// writeDenied answers a policy denial: the status and the reasons as JSON, as the whole body
// (a filter's response phase, which has run, may have written one).
func writeDenied(ctx *fasthttp.RequestCtx, status int, reasons []string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.Response.ResetBody()
	b := ctx.Response.BodyWriter()
	buf := make([]byte, 0, 64)
	buf = append(buf, `{"error":"denied","reasons":[`...)
	for i, r := range reasons {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = decisionlog.AppendString(buf, r) // JSON, not Go's quoting: no \xff, no \a
	}
	buf = append(buf, "]}"...)
	_, _ = b.Write(buf)
}

// recordHeaders keeps the headers as received for the log; the strings live in the request's
// arena, which outlives the synchronous encoding in Log.
func recordHeaders(rec *decisionlog.Record, h *fasthttp.RequestHeader, in *input.Builder) {
	for k, v := range h.All() {
		rec.Headers = append(rec.Headers, decisionlog.Header{Name: in.String(k), Value: in.String(v)})
	}
}

// lingerOnClose asks c (under TLS, the connection beneath it) to linger when it closes
// (lazyconn.Conn.Linger); a connection that cannot is left as it is.
func lingerOnClose(c net.Conn) {
	if t, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = t.NetConn()
	}
	if l, ok := c.(interface{ Linger() }); ok {
		l.Linger()
	}
}

// headerRead reports whether h holds a request's header as read: fasthttp resets a header
// block it fails to read. An error after the header (a body over max_body, a bad chunk, a
// timeout while the body arrives) comes from a request with a body, whose header block has a
// Content-Length or Transfer-Encoding field, so it is never empty.
func headerRead(h *fasthttp.RequestHeader) bool {
	return len(h.RawHeaders()) > 0
}

// handshakeFailed reports whether c is a TLS connection whose handshake did not complete.
func handshakeFailed(c net.Conn) bool {
	t, ok := c.(interface{ ConnectionState() tls.ConnectionState })
	return ok && !t.ConnectionState().HandshakeComplete
}

// handleError answers what fasthttp could not parse or accept, before any rule runs.
func (s *Server) handleError(ctx *fasthttp.RequestCtx, err error) {
	status := fasthttp.StatusBadRequest
	outcome := decisionlog.OutcomeError
	var small *fasthttp.ErrSmallBuffer
	var nerr net.Error
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		status, outcome = fasthttp.StatusRequestEntityTooLarge, decisionlog.OutcomeTooLarge
	case errors.As(err, &small):
		status = fasthttp.StatusRequestHeaderFieldsTooLarge
	case errors.As(err, &nerr) && nerr.Timeout():
		status = fasthttp.StatusRequestTimeout
	}
	ctx.Response.Reset()
	ctx.SetConnectionClose()
	writeError(ctx, status, fasthttp.StatusMessage(status))
	// The connection closes after this answer, maybe with the request's bytes unread (a body
	// over max_body, a header block over max_header): it lingers, or the client, still
	// sending them, gets a reset in place of the answer. A client that timed out is not
	// waited for.
	if status != fasthttp.StatusRequestTimeout {
		lingerOnClose(ctx.Conn())
	}
	var id [32]byte
	rec := decisionlog.Record{DecisionID: s.sequentialDecisionID(&id), Time: time.Now(), RemoteIP: ctx.RemoteIP().String(), Outcome: outcome, Status: status, Error: wireErrorKind(err)}
	if !handshakeFailed(ctx.Conn()) && headerRead(&ctx.Request.Header) {
		// A refused TLS handshake, or a header block the listener could not read (over
		// max_header, malformed), leaves no request line: fasthttp's defaults (GET /) are no
		// client's, and the record says only what did happen, the error.
		rec.Method, rec.Path = string(ctx.Method()), string(rawTarget(ctx))
		// The route is not known (fasthttp refused the request before the handler): the
		// path is masked by the rule of a route whose prefix starts it (a body over max_body
		// sent to a route whose policy reads a key from the path).
		if snap := s.o.Snapshots.Acquire(); snap != nil {
			if m := maskedTarget(snap, rec.Path); m != "" {
				rec.Path, rec.PathMasked = m, true
			}
			snap.Release()
		}
	}
	if s.o.Observer != nil {
		s.o.Observer.Request("", outcome, status, 0)
	}
	s.o.Log.Log(&rec)
}
