package delivery

import (
	"log/slog"
	"sync"
	"time"
)

// BreakerThreshold is how many failed attempts in a row (no answer, 408, 429, 5xx) open a
// destination's circuit breaker.
const BreakerThreshold = 5

// gates holds each destination's admission state in one dispatcher: attempts in flight, the
// max_rate token bucket and the circuit breaker. Safe for concurrent use.
type gates struct {
	mu       sync.Mutex
	m        map[Destination]*gate
	cooldown time.Duration
}

type gate struct {
	inflight, maxInFlight int
	rate, tokens          float64
	refilled              time.Time
	fails                 int       // failed attempts in a row
	openUntil             time.Time // breaker open (no attempt) until then
	open, probing         bool      // probing: the one half-open attempt is out
}

func (g *gate) refill(now time.Time) {
	if g.rate <= 0 {
		return
	}
	burst := max(1, g.rate)
	g.tokens = min(burst, g.tokens+now.Sub(g.refilled).Seconds()*g.rate)
	g.refilled = now
}

// shut reports whether g admits no attempt now.
func (g *gate) shut(now time.Time) bool {
	if g.open && (now.Before(g.openUntil) || g.probing) {
		return true
	}
	if g.maxInFlight > 0 && g.inflight >= g.maxInFlight {
		return true
	}
	g.refill(now)
	return g.rate > 0 && g.tokens < 1
}

// closed returns the destinations that admit no attempt now (for Claim's skip).
func (gs *gates) closed(now time.Time) []Destination {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	var out []Destination
	for dest, g := range gs.m {
		if g.shut(now) {
			out = append(out, dest)
		}
	}
	return out
}

// admit takes a place for one attempt to dest under t's limits, or reports false.
func (gs *gates) admit(dest Destination, t *Target, now time.Time) bool {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g := gs.m[dest]
	if g == nil {
		g = &gate{tokens: max(1, t.MaxRate), refilled: now}
		gs.m[dest] = g
	}
	g.maxInFlight, g.rate = t.MaxInFlight, t.MaxRate
	if g.shut(now) {
		return false
	}
	if g.open {
		g.probing = true // half-open: this attempt is the probe
	}
	if g.rate > 0 {
		g.tokens--
	}
	g.inflight++
	return true
}

// done ends an admitted attempt; failed opens the breaker after BreakerThreshold in a row
// (or at once after a failed probe), an answered attempt closes it.
func (gs *gates) done(dest Destination, failed bool, now time.Time, log *slog.Logger) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g := gs.m[dest]
	g.inflight--
	if !failed {
		if g.open {
			log.Info("delivery: circuit breaker closed: the upstream answers again", "route", dest.Route, "destination", dest.Dest)
		}
		g.fails, g.open, g.probing = 0, false, false
		return
	}
	g.fails++
	if g.probing || (!g.open && g.fails >= BreakerThreshold) {
		if !g.open {
			log.Warn("delivery: circuit breaker open: the upstream keeps failing; attempts pause", "route", dest.Route, "destination", dest.Dest, "failures", g.fails, "for", gs.cooldown)
		}
		g.open, g.probing, g.openUntil = true, false, now.Add(gs.cooldown)
	}
}

// openDests reports the destinations whose breaker is open, for the metrics.
func (gs *gates) openDests() []Destination {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	var out []Destination
	for dest, g := range gs.m {
		if g.open {
			out = append(out, dest)
		}
	}
	return out
}

// BreakersOpen returns the destinations whose circuit breaker is open now.
func (d *Dispatcher) BreakersOpen() []Destination { return d.gates.openDests() }
