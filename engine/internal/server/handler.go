package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"strconv"
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

// exchange is one request's working state, pooled.
type exchange struct {
	rec       decisionlog.Record
	in        input.Builder
	instances []*filter.Instance
	fx        filter.Exchange
	labels    []label // in the order the filters set them
	curFilter string
	pathBuf   []byte     // the canonical path, when it is not the raw one (routePath)
	rewrite   bool       // the canonical path differs from the raw one
	fwd       forwarding // what the gateway sets on the forwarded request
	idBuf     [32]byte
	peer      string  // the connection's peer address, formatted once per request
	dry       *dryRun // set by Evaluate only
}

var exchangePool = sync.Pool{New: func() any { return &exchange{} }}

// label is one hookwall.set_label call. Labels are kept flat: input.filters is built from
// them only for a policy that reads it.
type label struct{ filter, key, value string }

func (x *exchange) setLabel(k, v string) {
	x.labels = append(x.labels, label{x.curFilter, k, v})
}

// filtersInput returns input.filters: {"<filter>": {"labels": {key: value}}}, a later label
// of one key replacing an earlier one; nil when no filter set a label.
func (x *exchange) filtersInput() ast.Object {
	if len(x.labels) == 0 {
		return nil
	}
	byFilter := map[string]ast.Object{}
	for _, l := range x.labels {
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
	x.rec.Reset()
	x.in.Reset()
	x.instances = x.instances[:0]
	x.fx = filter.Exchange{}
	clear(x.labels)
	x.labels = x.labels[:0]
	x.curFilter = ""
	x.peer = ""
	x.rewrite = false
	x.fwd.reset()
}

// newID returns a unique request id: the server's random prefix and a counter, 32 hex digits.
// It is an identifier, not a secret, so it need not cost a random read per request.
func (s *Server) newID(buf *[32]byte) string {
	hex.Encode(buf[:16], s.idPrefix[:])
	n := s.idSeq.Add(1)
	for i := 31; i >= 16; i-- {
		buf[i] = hexDigits[n&0xf]
		n >>= 4
	}
	return string(buf[:])
}

const hexDigits = "0123456789abcdef"

// newID returns a random request id, for evaluations outside a Server (hookwall eval).
func newID(buf *[32]byte) string {
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	hex.Encode(buf[:], raw[:])
	return string(buf[:])
}

func (s *Server) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	x := exchangePool.Get().(*exchange)
	rec := &x.rec
	rec.Time = start
	rec.DecisionID = s.newID(&x.idBuf)
	rec.Method = x.in.String(ctx.Method())
	rec.Path = rawPath(ctx, &x.in) // routePath puts the canonical path in its place
	x.peer = ctx.RemoteIP().String()
	rec.RemoteIP = x.peer

	snap := s.o.Snapshots.Acquire()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in request", "decision_id", rec.DecisionID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			s.releaseInstances(x)
			ctx.Response.Reset()
			writeError(ctx, fasthttp.StatusInternalServerError, "internal error")
			rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, fasthttp.StatusInternalServerError, "panic: "+fmt.Sprint(p)
		}
		// Set last: the upstream's response replaced whatever was set before.
		ctx.Response.Header.Set("X-Request-Id", rec.DecisionID)
		total := time.Since(start)
		rec.TotalMicros = total.Microseconds()
		if s.o.Observer != nil {
			s.o.Observer.Request(rec.Route, rec.Outcome, rec.Status, total)
		}
		if s.o.Watch != nil {
			s.o.Watch.Observe(rec.Route, rec.RemoteIP, rec.Outcome, rec.Reasons, rec.Labels, start)
		}
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
	s.serve(ctx, snap, x)
}

func (s *Server) serve(ctx *fasthttp.RequestCtx, snap *snapshot.Snapshot, x *exchange) {
	rec := &x.rec
	if status, reason := badFraming(&ctx.Request.Header, snap.Config.Server.MaxHeaders); status != 0 {
		// The connection is closed too: what follows on it is not a request we can trust.
		ctx.SetConnectionClose()
		writeError(ctx, status, fasthttp.StatusMessage(status))
		rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, status, reason
		return
	}
	path, ok := routePath(ctx, snap.Config.Server.PathNormalization, x)
	if !ok {
		return
	}
	route, ok := x.dry.pick(snap.Match(ctx.Host(), path))
	if !ok {
		writeError(ctx, fasthttp.StatusNotFound, "no route")
		rec.Outcome, rec.Status = decisionlog.OutcomeNoRoute, fasthttp.StatusNotFound
		return
	}
	rec.Route = route.Name
	rec.Policy = route.Query.Package()
	if !route.AllowsMethod(ctx.Method()) {
		ctx.Response.Header.Set("Allow", route.Methods())
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
		rec.Outcome, rec.Status = decisionlog.OutcomeBadMethod, fasthttp.StatusMethodNotAllowed
		return
	}
	if s.o.Log != nil { // the copies only serve the decision log
		recordHeaders(rec, &ctx.Request.Header, &x.in)
		rec.CaptureBody(ctx.Request.Body(), int(snap.Config.Log.Body))
	}

	// A per-request deadline: ctx.Done() only fires at shutdown. Its timer is made only if
	// something waits on Done (deadlineCtx).
	dc := newDeadlineCtx(rec.Time.Add(route.Timeout)) // from the request's arrival: no clock read
	defer dc.cancel()
	var rctx context.Context = dc

	meta := input.Meta{
		ID: rec.DecisionID, Scheme: "http", ReceivedAt: rec.Time, RouteName: route.Name,
		RoutePath: route.Config.Path + route.Config.Prefix, Route: route.Input, ParseJSON: route.Query.NeedsJSON(), Path: rec.Path,
		JSON:     input.JSONLimits{MaxDepth: snap.Config.Server.MaxJSONDepth, MaxElements: snap.Config.Server.MaxJSONElements},
		RemoteIP: input.ClientIP(ctx.RemoteAddr(), forwardedFor(&ctx.Request.Header), snap.Config.Server.Trusted()),
	}
	rec.RemoteIP = meta.RemoteIP
	if s.o.Watch != nil && x.dry == nil && s.refuseBlocked(ctx, &meta, rec) {
		return
	}
	if ctx.IsTLS() {
		meta.Scheme = "https"
		meta.TLS = ctx.TLSConnectionState()
	}
	// Captured before the filters run: the policy sees the request as received. A compiled
	// policy that never reads input.request (allow := true, or a verdict of the filters) does
	// not pay for it, unless a shadow policy or a dry run may. One that does reads the fields
	// it needs from the capture; the request object is built only if something needs it whole.
	var captured *input.Captured
	if route.Query.NeedsRequest() || route.Shadow != nil || x.dry != nil {
		captured = x.in.Capture(&ctx.Request, &meta)
		if refuseJSON(ctx, captured, rec) {
			return
		}
	}
	if x.rewrite { // after the capture: input.request.uri is the target as received
		useCanonicalPath(&ctx.Request, path, &x.fwd)
	}

	if len(route.Filters) > 0 {
		if done := s.runFilters(rctx, ctx, route, x, &meta); done {
			return
		}
	}

	// The shadow policy and a dry run see the whole document; the live policy alone reads
	// input.request from the capture, and the rest of the document only if it reads it.
	whole := route.Shadow != nil || x.dry != nil
	var req policy.Request
	var doc ast.Value
	if whole || route.Query.NeedsDocument() {
		filters := x.filtersInput()
		var reqObj ast.Object
		if whole && captured != nil {
			reqObj = captured.Object()
		}
		doc = input.Document(reqObj, &meta, filters)
	}
	if captured != nil && !whole {
		req = captured
	}
	pstart := time.Now()
	dec, err := route.Query.EvalRequest(rctx, doc, req, x.dry.evalOption())
	pd := time.Since(pstart)
	rec.PolicyMicros = pd.Microseconds()
	if s.o.Observer != nil {
		s.o.Observer.Policy(route.Name, pd)
	}
	s.crossCheck(ctx, snap, route, captured, &meta, x, &dec, err)
	if s.decided(route, doc, &dec, err, x) {
		// A dry run (Evaluate) stops before acting on the decision; it keeps an allowed request's
		// instances to show their response phase.
		if !x.dry.keepsInstances(route) {
			s.releaseInstances(x)
		}
		return
	}
	if err != nil {
		text := redactQuoted(err.Error())
		s.log.Error("policy evaluation failed", "route", route.Name, "decision_id", rec.DecisionID, "err", text)
		s.finishFilters(rctx, x, route, true)
		writeError(ctx, fasthttp.StatusInternalServerError, "policy error")
		rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, fasthttp.StatusInternalServerError, text
		return
	}
	rec.Labels = dec.Labels
	if dec.Denied() {
		reasons := dec.Deny
		if len(reasons) == 0 {
			reasons = []string{"not allowed"}
		}
		rec.Reasons = append(rec.Reasons, reasons...)
		s.finishFilters(rctx, x, route, true)
		writeDenied(ctx, dec.Status, reasons)
		rec.Outcome, rec.Status = decisionlog.OutcomeDenied, dec.Status
		return
	}

	var claimed claim
	if dec.RateLimit != nil || dec.Dedupe != nil {
		var stop bool
		if stop, claimed = s.admit(rctx, ctx, &dec, rec); stop {
			s.finishFilters(rctx, x, route, true)
			return
		}
	}

	fw := &x.fwd
	fw.peer, fw.remote, fw.trusted = x.peer, ctx.RemoteAddr(), snap.Config.Server.Trusted()
	fw.strip, fw.headers = snap.Config.Server.StripHeaders(), dec.UpstreamHeaders
	if route.Config.Queued() {
		s.enqueue(rctx, ctx, route, &meta, x, claimed)
		return
	}
	ustart := time.Now()
	status, uerr := s.forward(ctx, route, &meta, fw, len(x.instances) > 0 || x.fx.RespChanged)
	uend := time.Now()
	ud := uend.Sub(ustart)
	rec.UpstreamMicros = ud.Microseconds()
	if s.o.Observer != nil {
		s.o.Observer.Upstream(route.Name, ud, uerr != nil)
	}
	if claimed.key != "" {
		s.settle(claimed, uend, uerr == nil && status >= 200 && status < 300, rec)
	}
	if uerr != nil {
		s.log.Warn("upstream failed", "route", route.Name, "decision_id", rec.DecisionID, "err", uerr)
		st := fasthttp.StatusBadGateway
		if errors.Is(uerr, fasthttp.ErrTimeout) || errors.Is(uerr, context.DeadlineExceeded) {
			st = fasthttp.StatusGatewayTimeout
		}
		ctx.Response.Reset()
		writeError(ctx, st, "upstream unavailable")
		s.finishFilters(rctx, x, route, true)
		rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeUpstream, st, uerr.Error()
		return
	}
	if s.finishFilters(rctx, x, route, false) {
		return // a response phase failed with on_error = "deny": the answer is the gateway's 502
	}
	rec.Outcome, rec.Status = decisionlog.OutcomeAllowed, ctx.Response.StatusCode()
}

// refuseBlocked answers 429 to a client the watcher blocked, before any filter or policy;
// otherwise it tells the policy what the watcher knows (input.source).
func (s *Server) refuseBlocked(ctx *fasthttp.RequestCtx, meta *input.Meta, rec *decisionlog.Record) bool {
	secs, refuse, marked := s.o.Watch.Blocked(meta.RemoteIP, rec.Time)
	if refuse {
		ctx.Response.Header.Set("Retry-After", strconv.FormatInt(secs, 10))
		writeError(ctx, fasthttp.StatusTooManyRequests, "source blocked")
		rec.Outcome, rec.Status = decisionlog.OutcomeBlocked, fasthttp.StatusTooManyRequests
		return true
	}
	meta.Source = input.SourceObject(marked)
	return false
}

// claim is a dedupe key admit claimed, to be settled once the upstream answered: the key, the
// TTL of its delivered marker, and the store's name for the claim (state.Admission.Claim).
type claim struct {
	key string
	ttl time.Duration
	id  uint64
}

// admit enforces rate_limit and dedupe. stop means the response is written.
func (s *Server) admit(rctx context.Context, ctx *fasthttp.RequestCtx, dec *policy.Decision, rec *decisionlog.Record) (stop bool, claimed claim) {
	var c state.Check
	if rl := dec.RateLimit; rl != nil {
		c.RateKey, c.Limit, c.Per, c.Burst = rl.Key, rl.Limit, rl.Per, rl.Burst
	}
	if d := dec.Dedupe; d != nil {
		c.DedupeKey, c.DedupeTTL = d.Key, d.TTL
	}
	var adm state.Admission
	err := errNoStore
	if s.o.Store != nil {
		adm, err = s.o.Store.Admit(rctx, &c)
	}
	if s.o.Observer != nil {
		s.o.Observer.State(err != nil)
	}
	if err != nil {
		rec.State = err.Error()
		if errors.Is(err, state.ErrInvalidCheck) {
			writeError(ctx, fasthttp.StatusInternalServerError, "policy error")
			rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, fasthttp.StatusInternalServerError, err.Error()
			return true, claim{}
		}
		if s.o.FailOpen {
			s.log.Warn("state backend failed; fail_mode=open forwards", "decision_id", rec.DecisionID, "err", err)
			return false, claim{}
		}
		s.log.Warn("state backend failed; fail_mode=closed refuses", "decision_id", rec.DecisionID, "err", err)
		ctx.Response.Header.Set("Retry-After", "1")
		writeError(ctx, fasthttp.StatusServiceUnavailable, "state backend unavailable")
		rec.Outcome, rec.Status = decisionlog.OutcomeUnavailable, fasthttp.StatusServiceUnavailable
		return true, claim{}
	}
	switch adm.Dedupe {
	case state.DedupeDelivered:
		ctx.Response.Header.Set("Hookwall-Duplicate", "true")
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"duplicate":true}`)
		rec.Outcome, rec.Status = decisionlog.OutcomeDuplicate, fasthttp.StatusOK
		return true, claim{}
	case state.DedupeInFlight:
		ctx.Response.Header.Set("Retry-After", "1")
		writeError(ctx, fasthttp.StatusConflict, "duplicate in flight")
		rec.Outcome, rec.Status = decisionlog.OutcomeInFlight, fasthttp.StatusConflict
		return true, claim{}
	}
	if adm.Limited {
		secs := int64((adm.RetryAfter + time.Second - 1) / time.Second)
		if secs < 1 {
			secs = 1
		}
		ctx.Response.Header.Set("Retry-After", strconv.FormatInt(secs, 10))
		writeError(ctx, fasthttp.StatusTooManyRequests, "rate limited")
		rec.Outcome, rec.Status = decisionlog.OutcomeRateLimited, fasthttp.StatusTooManyRequests
		return true, claim{}
	}
	if adm.Dedupe == state.DedupeNew {
		return false, claim{key: c.DedupeKey, ttl: c.DedupeTTL, id: adm.Claim}
	}
	return false, claim{}
}

var errNoStore = errors.New("no state store configured")

// claimCommitter is a store that commits a claim by its state.Admission.Claim, without looking
// its key up again (state.Bounded, in front of every backend).
type claimCommitter interface {
	CommitClaim(ctx context.Context, key string, claim uint64, ttl time.Duration) error
}

// settle commits a delivered dedupe key or releases it so the provider's retry goes through.
// It uses its own deadline, 2 s from now (a clock reading the caller has): the request's may
// have expired with the upstream.
func (s *Server) settle(c claim, now time.Time, delivered bool, rec *decisionlog.Record) {
	dc := newDeadlineCtx(now.Add(2 * time.Second))
	defer dc.cancel()
	var ctx context.Context = dc
	var err error
	switch cc, ok := s.o.Store.(claimCommitter); {
	case !delivered:
		err = s.o.Store.Release(ctx, c.key)
	case ok:
		err = cc.CommitClaim(ctx, c.key, c.id, c.ttl)
	default:
		err = s.o.Store.Commit(ctx, c.key, c.ttl)
	}
	if err != nil {
		rec.State = err.Error()
		s.log.Warn("state backend failed to settle a dedupe key", "decision_id", rec.DecisionID, "delivered", delivered, "err", err)
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

// writeDenied answers a policy denial: the status and the reasons as JSON.
func writeDenied(ctx *fasthttp.RequestCtx, status int, reasons []string) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b := ctx.Response.BodyWriter()
	buf := make([]byte, 0, 64)
	buf = append(buf, `{"error":"denied","reasons":[`...)
	for i, r := range reasons {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = strconv.AppendQuote(buf, r)
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
	var id [32]byte
	rec := decisionlog.Record{DecisionID: s.newID(&id), Time: time.Now(), Method: string(ctx.Method()), Path: string(rawTarget(ctx)), RemoteIP: ctx.RemoteIP().String(), Outcome: outcome, Status: status, Error: wireErrorKind(err)}
	if s.o.Observer != nil {
		s.o.Observer.Request("", outcome, status, 0)
	}
	s.o.Log.Log(&rec)
}
