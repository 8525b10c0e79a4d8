package server

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/state"
)

// admit enforces the allowed decision's rate_limit and dedupe in one step of the state
// store; a decision with neither does nothing. Reads x.dec; writes x.claim (a dedupe key
// claimed now, which the stage that stores or forwards the request must settle) and
// rec.State. It ends the request, after the filters' response phase, when the request is
// rate limited (429), a duplicate (200, not forwarded) or in flight (409), when the
// decision's obligations are out of range (500), and when the store fails under
// fail_mode = "closed" (503).
func (s *Server) admit(x *exchange) (done bool) {
	dec := &x.dec
	if dec.RateLimit == nil && dec.Dedupe == nil {
		return false
	}
	if s.admission(x) {
		s.finishFilters(x.dc, x, x.route, true)
		return true
	}
	return false
}

// admission is admit's state-store call and its answer.
func (s *Server) admission(x *exchange) (stop bool) {
	ctx, rec, dec := x.ctx, &x.rec, &x.dec
	c := &x.check // in the exchange: Admit takes a pointer through an interface, which escapes
	*c = state.Check{}
	if rl := dec.RateLimit; rl != nil {
		c.RateLimit = *rl
	}
	if d := dec.Dedupe; d != nil {
		c.Dedupe = *d
		// A key is its route's: two routes that receive the same sender's message (a
		// Standard Webhooks sender gives every endpoint the same id) each forward their
		// copy, and a route whose sender picks its ids cannot mark another's as delivered.
		c.Dedupe.Key = routeKey(x.route.Name, d.Key)
		// The request settles its claim within its route's timeout (counted from its
		// arrival) and settle's own deadline: the claim lives that long, not longer.
		c.InFlight = x.route.Timeout + claimGrace
	}
	var adm state.Admission
	err := errNoStore
	if s.o.Store != nil {
		adm, err = s.o.Store.Admit(x.dc, c)
	}
	if err == nil && adm.Dedupe == state.DedupeNew && !adm.Limited {
		// Recorded at once, so that a panic from here on releases it (handle's recover).
		x.claim = claim{key: c.Dedupe.Key, ttl: c.Dedupe.TTL, id: adm.Claim}
	}
	if s.o.Observer != nil {
		s.o.Observer.State(err != nil)
	}
	if err != nil {
		rec.State = err.Error()
		if errors.Is(err, state.ErrInvalidCheck) {
			writeError(ctx, fasthttp.StatusInternalServerError, "policy error")
			rec.Outcome, rec.Status, rec.Error = decisionlog.OutcomeError, fasthttp.StatusInternalServerError, err.Error()
			return true
		}
		if s.o.FailOpen {
			s.log.Warn("state backend failed; fail_mode=open forwards", "decision_id", rec.DecisionID, "err", err)
			return false
		}
		s.log.Warn("state backend failed; fail_mode=closed refuses", "decision_id", rec.DecisionID, "err", err)
		ctx.Response.Header.Set("Retry-After", "1")
		writeError(ctx, fasthttp.StatusServiceUnavailable, "state backend unavailable")
		rec.Outcome, rec.Status = decisionlog.OutcomeUnavailable, fasthttp.StatusServiceUnavailable
		return true
	}
	switch adm.Dedupe {
	case state.DedupeDelivered:
		ctx.Response.Header.Set("Hookwall-Duplicate", "true")
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"duplicate":true}`)
		rec.Outcome, rec.Status = decisionlog.OutcomeDuplicate, fasthttp.StatusOK
		return true
	case state.DedupeInFlight:
		ctx.Response.Header.Set("Retry-After", "1")
		writeError(ctx, fasthttp.StatusConflict, "duplicate in flight")
		rec.Outcome, rec.Status = decisionlog.OutcomeInFlight, fasthttp.StatusConflict
		return true
	}
	if adm.Limited {
		secs := int64((adm.RetryAfter + time.Second - 1) / time.Second)
		if secs < 1 {
			secs = 1
		}
		ctx.Response.Header.Set("Retry-After", strconv.FormatInt(secs, 10))
		writeError(ctx, fasthttp.StatusTooManyRequests, "rate limited")
		rec.Outcome, rec.Status = decisionlog.OutcomeRateLimited, fasthttp.StatusTooManyRequests
		return true
	}
	return false
}

var errNoStore = errors.New("no state store configured")

// routeKey is key in route's namespace: the route's name, its length first, so that no two
// (route, key) pairs make the same text.
func routeKey(route, key string) string {
	return strconv.Itoa(len(route)) + ":" + route + ":" + key
}

// claim is a dedupe key admit claimed, to be settled once the upstream answered: the key, the
// TTL of its delivered marker, and the store's name for the claim (state.Admission.Claim).
type claim struct {
	key string
	ttl time.Duration
	id  uint64
}

// claimSettler is a store that settles a claim by its state.Admission.Claim: it commits it
// without looking its key up again, and releases it only while the key still holds it
// (state.Bounded, in front of every backend).
type claimSettler interface {
	CommitClaim(ctx context.Context, key string, claim uint64, ttl time.Duration) error
	ReleaseClaim(ctx context.Context, key string, claim uint64) error
}

// contextFree is a store that reads no context (the memory store, behind state.Bounded):
// settling a claim in it needs no deadline of its own, nor the allocation of one.
type contextFree interface {
	IgnoresContext() bool
}

// claimGrace is what a dedupe claim lives past its route's timeout: settle's deadline
// (settleTimeout) and a margin.
const claimGrace = settleTimeout + 3*time.Second

// settleTimeout bounds settle's store calls.
const settleTimeout = 2 * time.Second

// settle commits the dedupe key admit claimed (x.claim), when there is one, if delivered, or
// releases it so the provider's retry goes through; a claim is settled once (a panic after
// it, which settles again, changes nothing). It uses its own deadline, settleTimeout from
// now (a clock reading the caller has): the request's may have expired with the upstream; a
// store that reads no context is given none. A backend whose calls can time out makes them
// again within that deadline (engine/state/redis).
func (s *Server) settle(x *exchange, now time.Time, delivered bool) {
	c := x.claim
	if c.key == "" {
		return
	}
	x.claim = claim{} // settled once: a panic after this must not release a delivered key
	rec := &x.rec
	ctx := context.Background()
	if cs, ok := s.o.Store.(contextFree); !ok || !cs.IgnoresContext() {
		dc := newDeadlineCtx(now.Add(settleTimeout))
		defer dc.cancel()
		ctx = dc
	}
	var err error
	switch cc, ok := s.o.Store.(claimSettler); {
	case !delivered && ok:
		err = cc.ReleaseClaim(ctx, c.key, c.id)
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
