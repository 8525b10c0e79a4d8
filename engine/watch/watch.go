package watch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
)

// Scope says what an anomaly's Source is.
type Scope string

// Scope values.
const (
	ScopeIP     Scope = "ip"
	ScopeSender Scope = "sender"
	ScopeRoute  Scope = "route"
)

// Anomaly is one raised anomaly, as logged, listed on the status page and sent as an alert.
type Anomaly struct {
	ID     string    `json:"id"`
	At     time.Time `json:"at"`
	Scope  Scope     `json:"scope"`
	Source string    `json:"source"` // the IP, the sender or the route name
	Route  string    `json:"route"`  // the route of the request that raised it
	Kind   string    `json:"kind"`   // the reason class
	// Rule is the threshold crossed: "ratio" (against the baseline) or "max_deny_rate".
	Rule string `json:"rule"`
	// Count is the sliding window's refusals of Kind; Baseline the slow average of the same,
	// per window; Rate is Count a second.
	Count         float64   `json:"window_count"`
	WindowSeconds float64   `json:"window_seconds"`
	Baseline      float64   `json:"baseline"`
	Rate          float64   `json:"rate_per_second"`
	ActiveUntil   time.Time `json:"active_until"`
	// Blocked is set when the anomaly blocked (or, with block = "policy", marked) the source.
	Blocked      bool       `json:"blocked"`
	BlockedUntil *time.Time `json:"blocked_until,omitempty"`
}

// Options configure New.
type Options struct {
	Config config.Watch
	Logger *slog.Logger
	// Secret returns a [secrets] value by name at the time an alert is signed (so a reload
	// that rotates the key is followed).
	Secret func(name string) ([]byte, bool)
	// Fleet shares blocks with other gateways; nil keeps them local.
	Fleet Fleet
	// Client sends alerts; nil means a client with a 5s timeout that follows no redirect.
	Client *http.Client
	// Gateway names this gateway in shared blocks (e.g. host:port); optional.
	Gateway string
}

// rule is one class's thresholds in the units Observe compares.
type rule struct {
	minEvents float32
	ratio     float32
	maxCount  float32 // max_deny_rate × window seconds; 0: off
	block     bool    // an IP's anomaly of this class blocks it (config.Watch.Blocks)
}

// Watcher watches decisions. Create with New; Run starts its background work. All methods
// are safe for concurrent use.
type Watcher struct {
	cfg     config.Watch
	log     *slog.Logger
	seed    maphash.Seed
	win     int64 // window, ns
	winSecs float32
	alpha   float32 // window / baseline
	rules   [refusals]rule

	sources *table
	routes  *table
	blocks  *blocks
	alerts  *alerter

	mu     sync.Mutex // guards what the slow path keeps
	recent []Anomaly  // newest last, at most keepRecent
	counts map[countKey]uint64
	total  atomic.Uint64
}

type countKey struct{ route, kind string }

// keepRecent is how many anomalies Status lists.
const keepRecent = 100

// routeSlots bounds the routes tracked (a config has far fewer).
const routeSlots = 1024

// New builds a watcher from a validated [watch] config.
func New(o Options) (*Watcher, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := o.Config
	w := &Watcher{
		cfg: c, log: o.Logger, seed: maphash.MakeSeed(),
		win: int64(c.Window), winSecs: float32(c.Window.D().Seconds()),
		alpha:   float32(float64(c.Window) / float64(c.Baseline)),
		sources: newTable(c.MaxSources), routes: newTable(routeSlots),
		counts: map[countKey]uint64{},
	}
	for i := range w.rules {
		r := c.Rule(i)
		w.rules[i] = rule{minEvents: float32(r.MinEvents), ratio: float32(r.Ratio), maxCount: float32(r.MaxDenyRate) * w.winSecs, block: c.Blocks(i)}
	}
	w.blocks = newBlocks(&c, o.Fleet, o.Gateway, w.log)
	if c.AlertURL != "" {
		a, err := newAlerter(c.AlertURL, c.AlertSecret, o.Secret, o.Client, w.log)
		if err != nil {
			return nil, err
		}
		w.alerts = a
	}
	return w, nil
}

// Run does the background work (alert delivery, block expiry, fleet sync) until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if w.alerts != nil {
		wg.Add(1)
		go func() { defer wg.Done(); w.alerts.run(ctx) }()
	}
	w.blocks.run(ctx)
	wg.Wait()
}

// Blocked reports whether ip is blocked at now: refuse is true when the gateway must answer
// 429 (block = true) with Retry-After retryAfter seconds; marked is true for any block,
// enforced or left to the policy (input.source.blocked). It neither locks nor allocates.
func (w *Watcher) Blocked(ip string, now time.Time) (retryAfter int64, refuse, marked bool) {
	if w.blocks.inMap.Load() == 0 {
		return 0, false, false
	}
	var until int64
	var ok bool
	var buf [prefixTextMax]byte
	if k, isPrefix := sourceKey(buf[:0], ip, w.cfg.IPv6Prefix); isPrefix {
		until, ok = w.blocks.lookupBytes(k, now.UnixNano())
	} else {
		until, ok = w.blocks.lookup(ip, now.UnixNano())
	}
	if !ok {
		return 0, false, false
	}
	secs := (until - now.UnixNano() + int64(time.Second) - 1) / int64(time.Second)
	return max(secs, 1), w.cfg.Block == config.BlockOn, true
}

// Observe counts one decided request: its route, client IP, decision-log outcome and
// status, deny reasons and the policy's labels (labels["sender"], a string, names a
// verified sender). now is when the request was received. An IPv6 client counts as its
// ipv6_prefix. It neither locks nor allocates unless it raises an anomaly or the client is
// IPv6 (its prefix's text).
func (w *Watcher) Observe(route, ip string, outcome decisionlog.Outcome, status int, reasons []string, labels map[string]any, now time.Time) {
	c, ok := classify(outcome, status, reasons)
	if !ok {
		return
	}
	ns := now.UnixNano()
	ep := uint32(ns / w.win)
	frac := float32(ns%w.win) / float32(w.win)
	if ip != "" {
		key := ip
		var buf [prefixTextMax]byte
		if k, isPrefix := sourceKey(buf[:0], ip, w.cfg.IPv6Prefix); isPrefix {
			key = string(k)
		}
		w.track(w.sources, ScopeIP, key, route, c, ep, frac, now)
	}
	if sender, ok := labels["sender"].(string); ok && sender != "" {
		w.track(w.sources, ScopeSender, sender, route, c, ep, frac, now)
	}
	if route != "" {
		w.track(w.routes, ScopeRoute, route, route, c, ep, frac, now)
	}
}

// hash keys a source in its scope; never 0 (the empty slot).
func (w *Watcher) hash(scope Scope, key string) uint64 {
	h := maphash.String(w.seed, key)
	if scope == ScopeSender {
		h = h*0x9e3779b97f4a7c15 + 1 // an IP and a sender of the same text are different keys
	}
	if h == 0 {
		h = 1
	}
	return h
}

func (w *Watcher) track(t *table, scope Scope, key, route string, c Class, ep uint32, frac float32, now time.Time) {
	s := t.get(w.hash(scope, key), ep)
	s.roll(ep, w.alpha)
	n := s.cur[c].Add(1)
	if c == ClassAllowed {
		return
	}
	r := &w.rules[c]
	count := s.count(c, n, frac)
	if count < r.minEvents {
		return
	}
	base := s.baseline(c)
	var which string
	switch {
	case count >= r.ratio*base:
		which = "ratio"
	case r.maxCount > 0 && count > r.maxCount:
		which = "max_deny_rate"
	default:
		return
	}
	f := s.flag.Load()
	if f >= ep || !s.flag.CompareAndSwap(f, ep+1) {
		return // raised already in this window or the last
	}
	w.raise(Anomaly{
		At: now, Scope: scope, Source: key, Route: route, Kind: c.String(), Rule: which,
		Count: float64(count), WindowSeconds: float64(w.winSecs), Baseline: float64(base),
		Rate:        float64(count / w.winSecs),
		ActiveUntil: time.Unix(0, int64(ep+2)*w.win),
	}, r.block)
}

// raise is the slow path: the anomaly is kept, counted, logged, acted on (a client IP's
// blocked when block, its class's setting, allows) and alerted.
func (w *Watcher) raise(a Anomaly, block bool) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	a.ID = hex.EncodeToString(id[:])
	if a.Scope == ScopeIP && block && w.cfg.Block != config.BlockOff {
		if until, ok := w.blocks.add(a.Source, a.Route, a.Kind, a.At, a.Rule); ok {
			a.Blocked, a.BlockedUntil = true, &until
		}
	}
	w.total.Add(1)
	w.mu.Lock()
	w.counts[countKey{a.Route, a.Kind}]++
	if len(w.recent) == keepRecent {
		w.recent = slices.Delete(w.recent, 0, 1)
	}
	w.recent = append(w.recent, a)
	w.mu.Unlock()
	line, _ := json.Marshal(a)
	w.log.Warn("anomaly", "anomaly", string(line))
	if w.alerts != nil {
		w.alerts.enqueue(a)
	}
}

// Stats are the watcher's counters.
type Stats struct {
	Sources   int64  `json:"sources"`   // sources tracked (client IPs and senders)
	Capacity  int    `json:"capacity"`  // slots of the source table
	Evictions uint64 `json:"evictions"` // sources evicted to make room
	Anomalies uint64 `json:"anomalies"` // raised since start
	Blocks    int    `json:"blocks"`    // blocks in force
	// BlockCapacity is max_blocks; BlocksRefused counts the blocks not placed (or not read
	// from the fleet) because that many were held.
	BlockCapacity int    `json:"block_capacity"`
	BlocksRefused uint64 `json:"blocks_refused"`
	// Alerts delivered, given up after the last retry, and dropped because the queue was full.
	AlertsSent    uint64 `json:"alerts_sent"`
	AlertsFailed  uint64 `json:"alerts_failed"`
	AlertsDropped uint64 `json:"alerts_dropped"`
	// FleetErrors counts failed reads and writes of the shared blocks.
	FleetErrors uint64 `json:"fleet_errors"`
}

// Stats returns the counters.
func (w *Watcher) Stats() Stats {
	st := Stats{
		Sources: w.sources.used.Load(), Capacity: len(w.sources.slots), Evictions: w.sources.evictions.Load(),
		Anomalies: w.total.Load(), Blocks: w.blocks.count(time.Now()), FleetErrors: w.blocks.fleetErrs.Load(),
		BlockCapacity: w.blocks.max, BlocksRefused: w.blocks.refused.Load(),
	}
	if w.alerts != nil {
		st.AlertsSent, st.AlertsFailed, st.AlertsDropped = w.alerts.sent.Load(), w.alerts.failed.Load(), w.alerts.dropped.Load()
	}
	return st
}

// Counts calls yield with the anomalies raised per route and kind since start.
func (w *Watcher) Counts(yield func(route, kind string, n uint64)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, n := range w.counts {
		yield(k.route, k.kind, n)
	}
}

// Status is what the status page shows of the watcher.
type Status struct {
	Active []Anomaly `json:"active"` // still active, newest first
	Recent []Anomaly `json:"recent"` // the last ones raised, newest first
	Blocks []Block   `json:"blocks"`
	Stats  Stats     `json:"stats"`
}

// Status returns the active and recent anomalies, the blocks in force and the counters.
func (w *Watcher) Status(now time.Time) Status {
	st := Status{Active: []Anomaly{}, Recent: []Anomaly{}, Blocks: w.Blocks(now), Stats: w.Stats()}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.recent) - 1; i >= 0; i-- {
		a := w.recent[i]
		st.Recent = append(st.Recent, a)
		if a.ActiveUntil.After(now) {
			st.Active = append(st.Active, a)
		}
	}
	return st
}

// Blocks returns the blocks in force at now, soonest to end first.
func (w *Watcher) Blocks(now time.Time) []Block { return w.blocks.list(now) }

// Lift ends the block of source here and, with a fleet, everywhere; its repeat count starts
// over. found is false when no block was in force.
func (w *Watcher) Lift(ctx context.Context, source string) (found bool, err error) {
	return w.blocks.lift(ctx, source)
}

// neverBlocked reports whether source, an address or an IPv6 client's prefix, is inside
// never_block or holds an address it lists: a monitor is not blocked with its neighbours.
func neverBlocked(prefixes []netip.Prefix, source string) bool {
	var src netip.Prefix
	if a, err := netip.ParseAddr(source); err == nil {
		a = a.Unmap()
		src = netip.PrefixFrom(a, a.BitLen())
	} else if src, err = netip.ParsePrefix(source); err != nil {
		return false
	}
	for _, p := range prefixes {
		if p.Overlaps(src) {
			return true
		}
	}
	return false
}

// prefixTextMax is the longest text of an IPv6 prefix sourceKey writes
// ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120").
const prefixTextMax = 48

// sourceKey appends to buf the text ip is watched and blocked under when that is not ip
// itself: for an IPv6 address (not IPv4-mapped) and bits under 128, its prefix of bits
// ("2001:db8:1:2::/64"). isPrefix is false otherwise, and for text that is no address.
func sourceKey(buf []byte, ip string, bits int) (key []byte, isPrefix bool) {
	if bits >= 128 || strings.IndexByte(ip, ':') < 0 {
		return buf, false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4In6() || a.Zone() != "" {
		return buf, false
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return buf, false
	}
	return p.AppendTo(buf), true
}

// errorf keeps the package's error prefix in one place.
func errorf(format string, args ...any) error { return fmt.Errorf("watch: "+format, args...) }
