package server

import (
	"crypto/tls"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/internal/input"
	"github.com/hookwall/hookwall/engine/policy"
)

// stage is one step of the request path. It reads and writes the request's exchange (what
// each stage may touch is in its doc comment) and returns done when the request is over: the
// answer is written in x.ctx.Response and x.rec says why (a dry run's end leaves the answer
// to Evaluate). A stage that returns done has released the filter instances or run their
// response phase (dryrun keeps an allowed request's for Evaluate); one that does not leaves
// the exchange to the next.
type stage struct {
	name string
	run  func(s *Server, x *exchange) (done bool)
}

// stages is the request path, in order. The order is the gateway's contract (a blocked source
// never reaches a filter, a filter's denial never reaches the policy, a denied request never
// takes a rate-limit token or a dedupe claim, nothing is stored or forwarded before both are
// taken); configuration only picks what runs inside a stage. A dry run (Evaluate) runs the
// same list: the stages that act on the world consult x.dry, and dryrun ends it before the
// decision is acted on. The list is never written.
var stages = [...]stage{
	{"peer", (*Server).checkPeer},
	{"framing", (*Server).checkFraming},
	{"path", (*Server).canonicalPath},
	{"route", (*Server).pickRoute},
	{"log", (*Server).copyForLog},
	{"input", (*Server).buildMeta},
	{"watch", (*Server).checkBlocked},
	{"capture", (*Server).captureRequest},
	{"rewrite", (*Server).rewritePath},
	{"filters", (*Server).runFilters},
	{"policy", (*Server).evalPolicy},
	{"crosscheck", (*Server).crossCheck},
	{"shadow", (*Server).evalShadowPolicy},
	{"dryrun", (*Server).endDryRun},
	{"verdict", (*Server).actOnDecision},
	{"obligations", (*Server).admit},
	{"queue", (*Server).enqueue},
	{"upstream", (*Server).forwardUpstream},
}

// serve runs the stages on x, whose ctx, snap and record's received fields are set, until one
// ends the request. The last stage always does.
func (s *Server) serve(x *exchange) {
	defer x.cancel()
	for i := range stages {
		x.stage = i
		if stages[i].run(s, x) {
			return
		}
	}
}

// stageName names the stage x was in (for a panic's report).
func (x *exchange) stageName() string { return stages[x.stage].name }

// checkPeer refuses a request on a TLS connection whose client certificate no longer chains
// to the client CAs in force: the connection was accepted before a reload changed them (a
// partner CA removed), and its handshake verified the certificate under the old ones. Such a
// connection's certificate is verified again once per change; one that fails gets 421 and the
// connection is closed (a new connection's handshake is refused, or succeeds with a
// certificate the CAs in force trust). Without ClientCAs, and while they have not changed
// since the connection was accepted, it costs a load and a comparison. Ends the request when
// it refuses it.
func (s *Server) checkPeer(x *exchange) (done bool) {
	cas := s.o.ClientCAs
	if cas == nil {
		return false
	}
	ctx, rec := x.ctx, &x.rec
	c, ok := ctx.Conn().(interface {
		NetConn() net.Conn
		ConnectionState() tls.ConnectionState
	})
	var p *peerConn
	if ok {
		p, ok = c.NetConn().(*peerConn)
	}
	var err error
	switch {
	case !ok:
		// Not a connection of Serve's listener: nothing says under which CAs it was verified.
		err = errUnknownConn
	case p.verified == cas.ClientCAGeneration():
		return false
	default:
		var gen uint64
		if gen, err = cas.VerifyClient(c.ConnectionState().PeerCertificates); err == nil {
			p.verified = gen
			return false
		}
	}
	ctx.SetConnectionClose()
	writeError(ctx, fasthttp.StatusMisdirectedRequest, "client certificate no longer trusted: connect again")
	rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, fasthttp.StatusMisdirectedRequest, err.Error()
	return true
}

var errUnknownConn = errors.New("server: a TLS connection the listener did not accept: its client certificate cannot be checked again")

// checkFraming refuses a request whose framing an upstream could read differently
// (badFraming). Reads the request header and [server] max_headers; ends the request, with
// the connection closed, when the framing is bad.
func (s *Server) checkFraming(x *exchange) (done bool) {
	ctx, rec := x.ctx, &x.rec
	srv := &x.snap.Config.Server
	status, reason, underscores, connNamed := badFraming(&ctx.Request.Header, srv.MaxHeaders, srv.UnderscoreHeaders == config.UnderscoreDrop)
	if status == 0 {
		if underscores {
			dropUnderscoreFields(&ctx.Request.Header)
		}
		if connNamed {
			dropConnectionNamed(&ctx.Request.Header)
		}
		return false
	}
	// The connection is closed too: what follows on it is not a request we can trust.
	ctx.SetConnectionClose()
	writeError(ctx, status, fasthttp.StatusMessage(status))
	rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, status, reason
	return true
}

// canonicalPath makes the request's path canonical (routePath). Writes x.path, x.rewrite and
// rec.Path; ends the request with 400 when the path has no canonical form or is refused.
func (s *Server) canonicalPath(x *exchange) (done bool) {
	path, ok := routePath(x.ctx, x.snap.Config.Server.PathNormalization, x)
	x.path = path
	return !ok
}

// pickRoute routes the request on its host and canonical path (a dry run's named route
// instead, when it names one) and checks its method. Writes x.route, rec.Route and
// rec.Policy; ends the request with 404 when no route matches, 405 when the route does not
// take the method.
func (s *Server) pickRoute(x *exchange) (done bool) {
	ctx, rec := x.ctx, &x.rec
	// The Host header, as the policy reads it (input.request.host), not fasthttp's URI host.
	host := ctx.Request.Header.Host()
	route, ok := x.dry.pick(x.snap.Match(host, x.path, ctx.Method()))
	if !ok {
		writeError(ctx, fasthttp.StatusNotFound, "no route")
		rec.Outcome, rec.Status = decisionlog.OutcomeNoRoute, fasthttp.StatusNotFound
		return true
	}
	x.route = route
	x.fwd.host = append(x.fwd.host[:0], host...) // X-Forwarded-Host, whatever a filter sets
	rec.Route = route.Name
	rec.Policy = route.Query.Package()
	if !route.AllowsMethod(ctx.Method()) {
		ctx.Response.Header.Set("Allow", route.Methods())
		writeError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
		rec.Outcome, rec.Status = decisionlog.OutcomeBadMethod, fasthttp.StatusMethodNotAllowed
		return true
	}
	return false
}

// copyForLog keeps the headers and the body ([log] body bytes of it) as received, for the
// decision log; without a decision log it does nothing. Writes rec.Headers and rec.Body;
// never ends the request.
func (s *Server) copyForLog(x *exchange) (done bool) {
	if s.o.Log != nil {
		recordHeaders(&x.rec, &x.ctx.Request.Header, &x.in)
		x.rec.CaptureBody(x.ctx.Request.Body(), int(x.snap.Config.Log.Body))
	}
	return false
}

// buildMeta starts the request's deadline (the route's timeout) and the input document's
// metadata: the client IP (X-Forwarded-For honoured from [server] trusted_proxies), the
// scheme, the route. Writes x.dc, x.meta and rec.RemoteIP; never ends the request.
func (s *Server) buildMeta(x *exchange) (done bool) {
	ctx, rec, route, sc := x.ctx, &x.rec, x.route, &x.snap.Config.Server
	trusted := sc.Trusted()
	var xff []byte // read only from a trusted proxy: without one, no header is looked for
	if len(trusted) > 0 {
		xff = forwardedFor(&ctx.Request.Header)
	}
	// A per-request deadline: ctx.Done() only fires at shutdown. Its timer is made only if
	// something waits on Done (deadlineCtx), and its context is the pooled exchange's own
	// unless one did.
	x.dc = x.deadline(rec.Time.Add(route.Timeout)) // from the request's arrival: no clock read
	x.dc.sens = &x.sens
	x.meta = input.Meta{
		ID: rec.DecisionID, Scheme: "http", ReceivedAt: rec.Time, RouteName: route.Name,
		RoutePath: route.Config.Path + route.Config.Prefix, Route: route.Input, ParseJSON: route.Query.NeedsJSON(), Path: rec.Path,
		JSON:     input.JSONLimits{MaxDepth: sc.MaxJSONDepth, MaxElements: sc.MaxJSONElements},
		RemoteIP: input.ClientIPOr(ctx.RemoteAddr(), x.peer, xff, trusted),
	}
	if ctx.IsTLS() {
		x.meta.Scheme = "https"
		x.meta.TLS = ctx.TLSConnectionState()
	}
	rec.RemoteIP = x.meta.RemoteIP
	if len(xff) > 0 && input.TrustedPeer(ctx.RemoteAddr(), trusted) {
		// A copy: a filter's set_header_value on X-Forwarded-For writes over the bytes xff
		// points into.
		x.fwd.prior = append(x.fwd.prior[:0], xff...)
	}
	return false
}

// checkBlocked asks the watcher about the client IP: a blocked one is answered 429 before any
// filter or policy; otherwise the policy is told what the watcher knows (input.source).
// Without a watcher, and in a dry run, it does nothing. Writes x.meta.Source; ends the
// request when the source is blocked.
func (s *Server) checkBlocked(x *exchange) (done bool) {
	if s.o.Watch == nil || x.dry != nil {
		return false
	}
	ctx, rec := x.ctx, &x.rec
	secs, refuse, marked := s.o.Watch.Blocked(x.meta.RemoteIP, rec.Time)
	if refuse {
		ctx.Response.Header.Set("Retry-After", strconv.FormatInt(secs, 10))
		writeError(ctx, fasthttp.StatusTooManyRequests, "source blocked")
		rec.Outcome, rec.Status = decisionlog.OutcomeBlocked, fasthttp.StatusTooManyRequests
		return true
	}
	x.meta.Source = input.SourceObject(marked)
	return false
}

// captureRequest captures the request as received for the policy, before the filters run. A
// compiled policy that never reads input.request (allow := true, or a verdict of the
// filters) does not pay for it, unless a shadow policy or a dry run may; one that does reads
// the fields it needs from the capture, and the request object is built only if something
// needs it whole. Writes x.captured; ends the request when its JSON body is refused
// (refuseJSON).
func (s *Server) captureRequest(x *exchange) (done bool) {
	if !x.route.Query.NeedsRequest() && x.route.Shadow == nil && x.dry == nil {
		return false
	}
	x.captured = x.in.Capture(&x.ctx.Request, &x.meta)
	return refuseJSON(x.ctx, x.captured, &x.rec)
}

// rewritePath puts the canonical path in the request's target, after the capture (so
// input.request.uri is the target as received) and before the filters (so they see the path
// the route and the policy judged). Writes the request's target and x.fwd's buffer; never
// ends the request.
func (s *Server) rewritePath(x *exchange) (done bool) {
	if x.rewrite {
		useCanonicalPath(&x.ctx.Request, x.path, &x.fwd)
	}
	return false
}

// evalPolicy evaluates the route's policy. The shadow policy and a dry run see the whole
// document; the live policy alone reads input.request from the capture, and the rest of the
// document only if it reads it. Writes x.doc, x.dec, x.policyErr, rec.PolicyMicros and
// rec.Result; never ends the request (actOnDecision acts on the decision).
func (s *Server) evalPolicy(x *exchange) (done bool) {
	route, rec := x.route, &x.rec
	whole := route.Shadow != nil || x.dry != nil
	var req policy.Request
	if whole || route.Query.NeedsDocument() {
		var reqObj ast.Object
		if whole && x.captured != nil {
			reqObj = x.captured.Object()
		}
		x.doc = input.Document(reqObj, &x.meta, filtersInput(x.labels))
	}
	if x.captured != nil && !whole {
		req = x.captured
	}
	// The filters' end, when they ran, is the policy's start: what lies between (the input
	// document) is the policy's work.
	pstart := x.filtersEnd
	if pstart.IsZero() {
		pstart = x.clock()
	}
	x.dec, x.policyErr = route.Query.EvalRequest(x.dc, x.doc, req, x.dry.evalParams())
	pd := time.Since(pstart)
	rec.PolicyMicros = pd.Microseconds()
	if s.o.Observer != nil {
		s.o.Observer.Policy(route.Name, pd)
	}
	if x.policyErr == nil {
		rec.Result = decisionlog.Result{Evaluated: true, Allow: x.dec.Allow, Deny: x.dec.Deny, Status: x.dec.Status}
	}
	return false
}

// actOnDecision answers a policy error with 500 and a denial with the policy's status and
// reasons, after the filters' response phase. Reads x.dec and x.policyErr; writes
// rec.Labels, rec.Reasons; ends the request unless the policy allowed it.
func (s *Server) actOnDecision(x *exchange) (done bool) {
	ctx, rec, route, dec := x.ctx, &x.rec, x.route, &x.dec
	if err := x.policyErr; err != nil {
		text := policy.RedactQuoted(err.Error())
		s.log.Error("policy evaluation failed", "route", route.Name, "decision_id", rec.DecisionID, "err", text)
		s.finishFilters(x.dc, x, route, true)
		writeError(ctx, fasthttp.StatusInternalServerError, "policy error")
		rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, fasthttp.StatusInternalServerError, text
		return true
	}
	rec.Labels = dec.Labels
	if !dec.Denied() {
		return false
	}
	reasons := dec.Deny
	if len(reasons) == 0 {
		reasons = []string{"not allowed"}
	}
	rec.Reasons = append(rec.Reasons, reasons...)
	s.finishFilters(x.dc, x, route, true)
	writeDenied(ctx, dec.Status, reasons)
	rec.Outcome, rec.Status = decisionlog.OutcomeDenied, dec.Status
	return true
}
