package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/postgres"
	"github.com/hookwall/hookwall/engine/delivery/sqlite"
	"github.com/hookwall/hookwall/engine/internal/lazyconn"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/tlsconf"
)

// deliveryKeyring returns the keyring of [delivery] encryption_keys, nil without keys. It
// seals the stored deliveries and the decision log's captured bodies.
func deliveryKeyring(cfg *config.Config, secrets *config.Secrets) (*delivery.Keyring, []delivery.Key, error) {
	names := cfg.Delivery.EncryptionKeys
	if len(names) == 0 {
		return nil, nil, nil
	}
	keys := make([]delivery.Key, len(names))
	for i, name := range names {
		v, _ := secrets.Get(name) // config validation made sure the secret is declared
		keys[i] = delivery.Key{ID: name, Value: v}
	}
	kr, err := delivery.NewKeyring(keys)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: delivery.encryption_keys: %w", cfg.File, err)
	}
	return kr, keys, nil
}

// openDelivery opens the [delivery] store (sealed with kr when set) and its dispatcher when
// some route is queued; a gateway without one opens nothing (nil, nil), and warns when the
// store holds pending deliveries (warnHeld).
func (g *Gateway) openDelivery(cfg *config.Config, kr *delivery.Keyring) (*delivery.Dispatcher, error) {
	if !cfg.AnyQueued() {
		g.warnHeld(cfg)
		return nil, nil
	}
	store, err := openDeliveryStore(cfg, 15*time.Second)
	if err != nil {
		return nil, err
	}
	attempts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookwall_delivery_attempts_total",
		Help: "Delivery attempts of queued routes by outcome: delivered, retry, dead, lost (another worker owned it).",
	}, []string{"route", "outcome"})
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hookwall_delivery_refused_total",
		Help: "Claimed deliveries refused, never attempted, by reason. Made dead: corrupt (the stored row does not decode), cleartext (stored in the clear though encryption_keys is set), earlier_seal (sealed by an earlier version, bound to its id alone), bad_seal (does not open: a changed key, or a row changed in the store). Held, pending, claimed again when the lease expires (counted at each claim): missing_key (sealed with a key not in encryption_keys), sealed_no_key (sealed, and encryption_keys is not set).",
	}, []string{"route", "reason"})
	// A delivery whose stored row does not decode, or (with keys) is not sealed as this
	// gateway seals (in the clear, sealed by an earlier version, altered), is made dead when
	// claimed, before any attempt: its final outcome is logged
	// and counted as the dispatcher's are, and, since a row the gateway did not write may be
	// a forgery, warned about (never with its headers or body) and counted by reason.
	refuse := func(r *delivery.Record, res delivery.Result, cause error) {
		attempts.WithLabelValues(r.Route, string(delivery.StateDead)).Inc()
		reason := refusalReason(cause)
		refused.WithLabelValues(r.Route, reason).Inc()
		g.log.Warn("delivery refused: its stored row is not one this gateway wrote as it writes them, so it is never sent", "delivery_id", r.ID, "route", r.Route, "reason", reason, "err", cause)
		g.logDelivery(r, res)
	}
	if kr != nil {
		store = delivery.Sealed(store, kr, refuse)
	}
	d := delivery.NewDispatcher(delivery.Options{
		Store:         store,
		Target:        g.deliveryTarget,
		Fanout:        g.fanout,
		Lease:         deliveryLease(cfg),
		KeepDelivered: cfg.Delivery.KeepDelivered.D(),
		KeepDead:      cfg.Delivery.KeepDead.D(),
		Final:         g.logDelivery,
		Ordered:       g.orderedRoutes,
		Attempted: func(route string, outcome delivery.AttemptOutcome) {
			attempts.WithLabelValues(route, string(outcome)).Inc()
		},
		Refused: refuse,
		// A sealed delivery this gateway has no key for is held, never sent (the dispatcher
		// logs it): counted at each claim.
		Held: func(r *delivery.Record, cause error) {
			refused.WithLabelValues(r.Route, delivery.HeldReason(cause)).Inc()
		},
		Logger: g.log,
	})
	reg := g.obs.metrics.Registry()
	for _, c := range []prometheus.Collector{attempts, refused} {
		if err := reg.Register(c); err != nil {
			_ = store.Close()
			return nil, fmt.Errorf("gateway: delivery metrics: %w", err)
		}
	}
	g.depth = &depthCache{store: store}
	if err := reg.Register(depthCollector{g.depth, d, g.destLabel}); err != nil {
		_ = store.Close()
		return nil, fmt.Errorf("gateway: delivery metrics: %w", err)
	}
	return d, nil
}

// refusalReason is the reason label of hookwall_delivery_refused_total for the cause a
// sealed store gives for refusing a claimed delivery.
func refusalReason(cause error) string {
	switch mk := (*delivery.MissingKeyError)(nil); {
	case errors.Is(cause, delivery.ErrCorrupt):
		return "corrupt"
	case errors.Is(cause, delivery.ErrStoredInClear):
		return "cleartext"
	case errors.Is(cause, delivery.ErrSealedUnbound):
		return "earlier_seal"
	case errors.As(cause, &mk):
		return "missing_key"
	default:
		return "bad_seal"
	}
}

// openDeliveryStore opens the [delivery] store cfg names (a PostgreSQL server is given wait to
// answer), its error naming the config file and key.
func openDeliveryStore(cfg *config.Config, wait time.Duration) (delivery.Store, error) {
	if cfg.Delivery.Store == config.StorePostgres {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		s, err := postgres.Open(ctx, postgres.Options{URL: cfg.Delivery.URL, MaxPending: cfg.Delivery.MaxPending})
		if err != nil {
			return nil, fmt.Errorf("%s: delivery.url: %w", cfg.File, err)
		}
		return s, nil
	}
	s, err := sqlite.Open(sqlite.Options{Path: cfg.Delivery.Path, MaxPending: cfg.Delivery.MaxPending})
	if err != nil {
		return nil, fmt.Errorf("%s: delivery.path: %w", cfg.File, err)
	}
	return s, nil
}

// warnHeld warns when a gateway that queues no route starts beside a store holding pending
// deliveries: webhooks answered 202 before their route was made direct (or removed) would
// otherwise wait in the store with nothing said. They are held, never sent to the direct
// route's upstream: the route queues again, or the operator deals with them, and either is
// a decision. A store that cannot be read is said so; the gateway starts all the same.
func (g *Gateway) warnHeld(cfg *config.Config) {
	if cfg.Delivery.Store == config.StorePostgres {
		if cfg.Delivery.URL == "" {
			return
		}
	} else if _, err := os.Stat(cfg.Delivery.Path); err != nil {
		return // no store was ever made here
	}
	store, err := openDeliveryStore(cfg, 5*time.Second)
	if err != nil {
		g.log.Warn("delivery: no route is queued; could not read the store for deliveries it still holds", "err", err)
		return
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	depth, err := store.Depth(ctx)
	if err != nil {
		g.log.Warn("delivery: no route is queued; could not read the store for deliveries it still holds", "err", err)
		return
	}
	pending, routes := 0, []string{}
	for _, d := range depth {
		if d.State == delivery.StatePending && d.Count > 0 {
			pending += d.Count
			routes = append(routes, d.Route)
		}
	}
	if pending > 0 {
		g.log.Warn("delivery: the store holds pending deliveries and no route is queued: they are held, sent nowhere, until their route is queued again (delivery = \"queued\")",
			"pending", pending, "routes", routes, "store", string(cfg.Delivery.Store))
	}
}

// deliveryLease is how long a claimed delivery is one worker's: twice the longest queued
// route timeout and 5s more. The dispatcher bounds every attempt to half of it, so an
// attempt ends before its lease does even when a reload raised a timeout: a delivery never
// has two live owners, and a dead gateway's work waits no longer than this.
func deliveryLease(cfg *config.Config) time.Duration {
	longest := time.Duration(0)
	for i := range cfg.Routes {
		if r := &cfg.Routes[i]; r.Queued() {
			longest = max(longest, r.Timeout.D())
		}
	}
	return 2*longest + 5*time.Second
}

// fanout returns the URLs of the live snapshot's route's destinations beside its upstream
// (the snapshot's config, which nothing changes).
func (g *Gateway) fanout(name string) []string {
	snap := g.snaps.Acquire()
	if snap == nil {
		return nil
	}
	defer snap.Release()
	for _, r := range snap.Routes {
		if r.Name == name {
			return r.Config.Destinations
		}
	}
	return nil
}

// destinationIndex returns the index in dests of the destination dest names (see
// delivery.Record.Dest: its DestinationID, or the 1-based position an older release
// stored), -1 when none does: the record is then held, never sent to another destination.
func destinationIndex(dests []string, dest int) int {
	if dest < delivery.DestinationIDBase {
		if dest >= 1 && dest <= len(dests) {
			return dest - 1
		}
		return -1
	}
	for i, u := range dests {
		if delivery.DestinationID(u) == dest {
			return i
		}
	}
	return -1
}

// deliveryTarget resolves a destination of a route of the live snapshot (0: its upstream),
// holding the snapshot (and so the route's upstream pool) until release. A destination's
// target is the same for every delivery until the next snapshot: it is resolved once per
// snapshot (targetCache), not for every delivery (its retry schedule made, its signing
// key decoded, its release bound anew).
func (g *Gateway) deliveryTarget(name string, dest int) (delivery.Target, func(), bool) {
	snap := g.snaps.Acquire()
	if snap == nil {
		return delivery.Target{}, nil, false
	}
	if t, release, ok := g.targets.get(snap, name, dest); ok {
		return t, release, true
	}
	t, ok := g.resolveTarget(snap, name, dest)
	if !ok {
		snap.Release()
		return delivery.Target{}, nil, false
	}
	return t, g.targets.put(snap, name, dest, t), true
}

// resolveTarget makes the target of a route's destination (0: its upstream; else see
// delivery.Record.Dest) from snap; ok false when snap has no such queued route or
// destination (the dispatcher then holds its deliveries).
func (g *Gateway) resolveTarget(snap *snapshot.Snapshot, name string, dest int) (delivery.Target, bool) {
	for _, r := range snap.Routes {
		if r.Name != name || !r.Config.Queued() {
			continue
		}
		i := -1
		if dest != 0 {
			if i = destinationIndex(r.Config.Destinations, dest); i < 0 {
				return delivery.Target{}, false
			}
		}
		t := delivery.Target{Client: r.Client, Scheme: r.Scheme, Host: r.Host, BasePath: r.BasePath, Timeout: r.Timeout, MaxInFlight: r.Config.MaxInFlight, MaxRate: r.Config.MaxRate}
		if i >= 0 {
			var err error
			if t.Client, t.Scheme, t.Host, t.BasePath, err = g.destClients.get(r.Config.Destinations[i], r.Timeout, int(r.Config.MaxResponseBody), r.Config.UpstreamCA); err != nil {
				g.log.Warn("delivery: destination unusable", "route", name, "destination", dest, "err", err)
				return delivery.Target{}, false
			}
		}
		if r.Config.Retry != nil {
			t.Retry = make([]time.Duration, len(r.Config.Retry))
			for i, d := range r.Config.Retry {
				t.Retry[i] = d.D()
			}
		}
		if r.Config.Sign != "" {
			v, _ := snap.Secrets.Get(r.Config.Sign)
			t.SignKey, _ = delivery.DecodeSignKey(v) // checked when the snapshot was built
		}
		return t, true
	}
	return delivery.Target{}, false
}

// targetCache keeps the targets resolved from one snapshot, and that snapshot's release.
// A target's Retry and SignKey are shared by the attempts that get it: they only read them.
type targetCache struct {
	mu      sync.Mutex
	snap    *snapshot.Snapshot // the snapshot the targets came from
	release func()             // snap.Release, bound once
	m       map[delivery.Destination]delivery.Target
}

// get returns the cached target of a route's destination when it was resolved from snap
// (which the caller holds), with what releases snap.
func (c *targetCache) get(snap *snapshot.Snapshot, name string, dest int) (delivery.Target, func(), bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap != snap {
		return delivery.Target{}, nil, false
	}
	t, ok := c.m[delivery.Destination{Route: name, Dest: dest}]
	return t, c.release, ok
}

// put keeps t as the target of a route's destination in snap, dropping the targets of an
// older snapshot, and returns what releases snap.
func (c *targetCache) put(snap *snapshot.Snapshot, name string, dest int, t delivery.Target) func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap != snap {
		c.snap, c.release, c.m = snap, snap.Release, map[delivery.Destination]delivery.Target{}
	}
	c.m[delivery.Destination{Route: name, Dest: dest}] = t
	return c.release
}

// destClients holds the connection pools of queued routes' destinations, one per URL,
// limits and CA bundle, for the gateway's life (destinations change rarely; a pool idle is
// cheap).
type destClients struct {
	mu sync.Mutex
	m  map[string]*destClient
}

type destClient struct {
	c                  *fasthttp.HostClient
	scheme, host, base string
}

// get returns the pool for raw (a destination URL) with the route's timeout, answer bound
// and upstream_ca (ca, a PEM file; empty: the system roots), and the URL's scheme, host and
// path. An https destination's certificate is checked as the route's upstream's is. The
// bundle is read at every call (once a snapshot a destination: the delivery targets are
// cached per snapshot), and its contents are part of the key, so a reload picks up a
// rotated CA.
func (dc *destClients) get(raw string, timeout time.Duration, maxBody int, ca string) (*fasthttp.HostClient, string, string, string, error) {
	key := raw + "\x00" + timeout.String() + "\x00" + strconv.Itoa(maxBody)
	if ca != "" && len(raw) > 6 && strings.EqualFold(raw[:6], "https:") {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, "", "", "", fmt.Errorf("destination %s: upstream_ca: %w", config.RedactURL(raw), err)
		}
		sum := sha256.Sum256(pem)
		key += "\x00" + string(sum[:])
	} else {
		ca = ""
	}
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if c := dc.m[key]; c != nil {
		return c.c, c.scheme, c.host, c.base, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", "", "", fmt.Errorf("destination %s: %w", config.RedactURL(raw), err)
	}
	addr := u.Host
	if u.Port() == "" {
		addr += map[string]string{"https": ":443", "http": ":80"}[u.Scheme]
	}
	var tc *tls.Config
	if u.Scheme == "https" {
		if tc, err = tlsconf.Upstream(u.Hostname(), ca); err != nil {
			return nil, "", "", "", fmt.Errorf("destination %s: %w", config.RedactURL(raw), err)
		}
	}
	c := &destClient{scheme: u.Scheme, host: u.Host, base: strings.TrimSuffix(u.EscapedPath(), "/"), c: &fasthttp.HostClient{
		Addr: addr, IsTLS: u.Scheme == "https", TLSConfig: tc, MaxConns: 1024,
		MaxIdleConnDuration: 30 * time.Second, ReadTimeout: timeout, WriteTimeout: timeout,
		MaxResponseBodySize: maxBody, ReadBufferSize: 64 << 10, DisablePathNormalizing: true,
		// No Name: fasthttp would put it in the User-Agent of a delivery stored without one.
		NoDefaultUserAgentHeader: true,
	}}
	// Both deadlines move later at every attempt; a connection is checked before it carries
	// a delivery after idling, and a delivery is sent again at once only when none of it was.
	lazyconn.Configure(c.c, timeout)
	if dc.m == nil {
		dc.m = map[string]*destClient{}
	}
	dc.m[key] = c
	return c.c, c.scheme, c.host, c.base, nil
}

// orderedRoutes returns the live snapshot's queued routes with ordered = true.
func (g *Gateway) orderedRoutes() []string {
	snap := g.snaps.Acquire()
	if snap == nil {
		return nil
	}
	defer snap.Release()
	var out []string
	for _, r := range snap.Routes {
		if r.Config.Queued() && r.Config.Ordered {
			out = append(out, r.Name)
		}
	}
	return out
}

// checkSignKeys refuses a snapshot whose queued route signs with a secret that is not a
// Standard Webhooks key, or has two destinations of one DestinationID (a collision of 30
// bits of their URLs' hashes: their deliveries could not be told apart).
func checkSignKeys(snap *snapshot.Snapshot) error {
	for _, r := range snap.Routes {
		if r.Config.Queued() && r.Config.Sign != "" {
			v, _ := snap.Secrets.Get(r.Config.Sign)
			if _, err := delivery.DecodeSignKey(v); err != nil {
				return fmt.Errorf("%s: route %q: sign: secret %q: %w", snap.Config.File, r.Name, r.Config.Sign, err)
			}
		}
		if err := checkDestinationIDs(r.Config.Destinations); err != nil {
			return fmt.Errorf("%s: route %q: destinations: %w", snap.Config.File, r.Name, err)
		}
	}
	return nil
}

// checkDestinationIDs refuses two different destination URLs of one DestinationID. The
// same URL twice is one destination, listed twice: each gets its own record, sent there.
func checkDestinationIDs(dests []string) error {
	for i, u := range dests {
		for _, v := range dests[:i] {
			if u != v && delivery.DestinationID(u) == delivery.DestinationID(v) {
				return fmt.Errorf("%s and %s have the same delivery id; change one (a trailing / changes it, not the deliveries' path)", config.RedactURL(v), config.RedactURL(u))
			}
		}
	}
	return nil
}

// logDelivery writes a delivery's final outcome to the decision log, under the decision
// id of the request that was queued.
func (g *Gateway) logDelivery(r *delivery.Record, res delivery.Result) {
	path, _, _ := strings.Cut(r.URI, "?") // the log never carries a query string
	snap := g.snaps.Acquire()
	path = loggedPath(snap, r.Route, path)
	if snap != nil {
		snap.Release()
	}
	rec := decisionlog.Record{
		DecisionID: r.DecisionID, Time: time.Now(), Route: r.Route, Method: r.Method, Path: path,
		Outcome: decisionlog.OutcomeDelivered, Status: res.Attempt.Status, Error: res.Attempt.Error,
		DeliveryID: r.ID, Attempts: res.Attempt.N, UpstreamMicros: res.Attempt.Latency.Microseconds(),
	}
	if res.State == delivery.StateDead {
		rec.Outcome = decisionlog.OutcomeDead
	}
	g.dlog.Log(&rec)
}

// loggedPath is a queued request's path as its records show it: the request's own record
// masked the key its route's policy read from the path, and the delivery's records (and the
// admin listing) mask it by the route's rule (snapshot.Route.MaskedTarget) of the serving
// snapshot snap. The delivery record keeps the path as forwarded, which the attempt needs;
// the rule is the route's, known without the request. A route snap does not hold (removed by
// a reload, or no snapshot) has no rule to go by: its path is shown as "/***", its first
// segment gone with the rest, since it may have held a key.
func loggedPath(snap *snapshot.Snapshot, route, path string) string {
	if snap != nil {
		for _, r := range snap.Routes {
			if r.Name == route {
				if m := r.MaskedTarget(path); m != "" {
					return m
				}
				return path
			}
		}
	}
	return "/***"
}

// routeDepth is one queued route's line on the status page.
type routeDepth struct {
	Route            string  `json:"route"`
	Pending          int     `json:"pending"`
	Delivered        int     `json:"delivered"`
	Dead             int     `json:"dead"`
	OldestPendingSec float64 `json:"oldest_pending_s"`
	BreakerOpen      bool    `json:"breaker_open"`
}

// deliveryDepth returns the store's depth per route for the status page: nil without a
// store, and one line saying the store failed (route "") when it does not answer.
func (g *Gateway) deliveryDepth() []routeDepth {
	d := g.deliveries
	if d == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	ds, err := g.depth.Depth(ctx)
	if err != nil {
		return []routeDepth{{Route: ""}}
	}
	// Lines are found by index: a pointer into out would be left behind when append moves it.
	byRoute := map[string]int{}
	var out []routeDepth
	line := func(route string) *routeDepth {
		i, ok := byRoute[route]
		if !ok {
			i = len(out)
			out = append(out, routeDepth{Route: route})
			byRoute[route] = i
		}
		return &out[i]
	}
	now := time.Now()
	for _, x := range ds {
		l := line(x.Route)
		switch x.State {
		case delivery.StatePending:
			l.Pending, l.OldestPendingSec = x.Count, now.Sub(x.Oldest).Seconds()
		case delivery.StateDelivered:
			l.Delivered = x.Count
		case delivery.StateDead:
			l.Dead = x.Count
		}
	}
	for _, dest := range d.BreakersOpen() {
		line(dest.Route).BreakerOpen = true
	}
	return out
}

// deadLetter is one dead delivery on the status page.
type deadLetter struct {
	ID        string    `json:"id"`
	Route     string    `json:"route"`
	Attempts  int       `json:"attempts"`
	Status    int       `json:"last_status"`
	Error     string    `json:"last_error"`
	UpdatedAt time.Time `json:"updated_at"`
}

// deadLettersShown bounds the dead deliveries the status page lists; the rest are in
// GET /-/deliveries?state=dead and replayable in bulk.
const deadLettersShown = 20

// deadLetters returns the newest dead deliveries for the status page, given the depth
// deliveryDepth read: nil when it counted none (so also without a store, and when the store
// did not answer it, which a second query would only wait on again) or the store fails now.
func (g *Gateway) deadLetters(depth []routeDepth) []deadLetter {
	if !slices.ContainsFunc(depth, func(l routeDepth) bool { return l.Dead > 0 }) {
		return nil
	}
	d := g.deliveries
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rs, err := d.Store().List(ctx, delivery.Query{State: delivery.StateDead, Limit: deadLettersShown})
	if err != nil {
		return nil
	}
	out := make([]deadLetter, len(rs))
	for i, r := range rs {
		out[i] = deadLetter{ID: r.ID, Route: r.Route, Attempts: r.Attempts, Status: r.LastStatus, Error: r.LastError, UpdatedAt: r.UpdatedAt}
	}
	return out
}

// depthCollector reports the store's depth and the open circuit breakers at each scrape.
type depthCollector struct {
	s depther
	d *delivery.Dispatcher
	// label names a destination in the metrics (Gateway.destLabel); ok false: not shown.
	label func(delivery.Destination) (string, bool)
}

// depther is what reads a store's depth.
type depther interface {
	Depth(ctx context.Context) ([]delivery.Depth, error)
}

// depthCache answers the store's depth to every reader: each open status page asks once a
// second, and so may a metrics scrape. A depth is a count of the whole store, a scan of a
// table that may hold millions of deliveries, so an answer that took at least depthSlow is
// reused for depthReuse times as long as it took (at most depthMaxAge): reading the depth
// then takes at most about 1/depthReuse of the store's time, however many read it. A
// quicker answer is not reused; readers wait for one that is being read.
type depthCache struct {
	store depther
	mu    sync.Mutex
	ds    []delivery.Depth
	until time.Time
}

const (
	depthSlow   = 50 * time.Millisecond
	depthReuse  = 20
	depthMaxAge = 10 * time.Second
)

// Depth returns the store's depth, read again unless the last answer is still reused. The
// answer is shared: callers must not change it.
func (c *depthCache) Depth(ctx context.Context) ([]delivery.Depth, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Now().Before(c.until) {
		return c.ds, nil
	}
	start := time.Now()
	ds, err := c.store.Depth(ctx)
	if err != nil {
		return nil, err
	}
	if took := time.Since(start); took >= depthSlow {
		c.ds, c.until = ds, time.Now().Add(min(depthReuse*took, depthMaxAge))
	}
	return ds, nil
}

var (
	depthDesc  = prometheus.NewDesc("hookwall_delivery_depth", "Deliveries in the store, by route and state (pending, delivered, dead).", []string{"route", "state"}, nil)
	oldestDesc = prometheus.NewDesc("hookwall_delivery_oldest_pending_age_seconds", "Age of the oldest pending delivery, by route.", []string{"route"}, nil)
	storeUp    = prometheus.NewDesc("hookwall_delivery_store_up", "1 when the delivery store answered the last scrape.", nil, nil)
	breakerOn  = prometheus.NewDesc("hookwall_delivery_breaker_open", "1 for a destination (0: the route's upstream, n: its n-th destination) whose circuit breaker is open: it kept failing and attempts pause.", []string{"route", "destination"}, nil)
)

// destLabel returns the destination label of dest's metrics: "0" for a route's upstream,
// n for its n-th destination in the live config; ok false for a destination not
// configured (nothing is attempted to it).
func (g *Gateway) destLabel(dest delivery.Destination) (string, bool) {
	if dest.Dest == 0 {
		return "0", true
	}
	snap := g.snaps.Acquire()
	if snap == nil {
		return "", false
	}
	defer snap.Release()
	for _, r := range snap.Routes {
		if r.Name == dest.Route {
			if i := destinationIndex(r.Config.Destinations, dest.Dest); i >= 0 {
				return strconv.Itoa(i + 1), true
			}
		}
	}
	return "", false
}

func (depthCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- depthDesc
	ch <- oldestDesc
	ch <- storeUp
	ch <- breakerOn
}

func (c depthCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	// A destination's records of an older release (by position) and this one's (by id)
	// have a breaker each, under one label: it is reported once.
	var seen [][2]string
	for _, dest := range c.d.BreakersOpen() {
		label, ok := c.label(dest)
		if key := [2]string{dest.Route, label}; ok && !slices.Contains(seen, key) {
			seen = append(seen, key)
			ch <- prometheus.MustNewConstMetric(breakerOn, prometheus.GaugeValue, 1, dest.Route, label)
		}
	}
	ds, err := c.s.Depth(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(storeUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(storeUp, prometheus.GaugeValue, 1)
	now := time.Now()
	for _, d := range ds {
		ch <- prometheus.MustNewConstMetric(depthDesc, prometheus.GaugeValue, float64(d.Count), d.Route, string(d.State))
		if d.State == delivery.StatePending {
			ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, now.Sub(d.Oldest).Seconds(), d.Route)
		}
	}
}

// LogOpener loads the config at path and returns what opens its decision log's sealed
// bodies: the keyring of its [delivery] encryption_keys, their secrets read with getenv
// (os.LookupEnv in production). Without keys the log holds bodies in the clear: the opener
// is nil, and so is the error.
func LogOpener(path string, getenv func(string) (string, bool)) (decisionlog.Opener, *config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	secrets, err := cfg.ResolveSecrets(getenv)
	if err != nil {
		return nil, nil, err
	}
	kr, _, err := deliveryKeyring(cfg, secrets)
	if err != nil || kr == nil {
		return nil, cfg, err
	}
	return kr, cfg, nil
}
