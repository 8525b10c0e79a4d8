package metrics

import (
	"maps"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/internal/nametab"
)

// Buckets of the duration histograms, in seconds: a whole request spans 100µs (refused
// early) to the 10s default route timeout; one stage (policy, filter) is usually well
// under a millisecond.
var (
	requestBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	stageBuckets   = []float64{.00001, .000025, .00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1}
)

// Sources are read at each scrape. Any may be nil.
type Sources struct {
	// Filters calls yield for each filter of the live snapshot.
	Filters func(yield func(name string, st filter.Stats))
	// State reports the state store's counters.
	State func() StateStats
	// DecisionLog reports the decision log's counters.
	DecisionLog func() decisionlog.Stats
	// Reload reports the reload counters; ok false means no value (skip this scrape).
	Reload func() (st ReloadStats, ok bool)
	// CrossCheck reports the cross-check's counters.
	CrossCheck func() CrossCheckStats
}

// CrossCheckStats are the cross-check's counters of sampled compiled decisions: evaluated
// again with topdown, dropped by its full queue, skipped over [policies] cross_check_max.
type CrossCheckStats struct {
	Checked, Dropped, Skipped uint64
}

// StateStats are the state store's own counters; which apply depends on the backend.
type StateStats struct {
	Memory    bool // Keys, Bytes, Evictions and DedupeEvictions apply
	Keys      int
	Bytes     int64
	Evictions uint64
	// DedupeEvictions counts, of Evictions, the dedupe entries: each lets a replay of its
	// delivery through before its TTL.
	DedupeEvictions uint64
}

// ReloadStats are the reload counters of a gateway.
type ReloadStats struct {
	Revision    string
	Reloads     uint64 // attempts applied
	Failures    uint64 // attempts refused
	LastOK      bool   // the last attempt applied
	LastSuccess time.Time
}

// Metrics is one gateway's registry and instruments. Create with New.
type Metrics struct {
	reg *prometheus.Registry

	requests     *prometheus.CounterVec
	requestDur   *prometheus.HistogramVec
	policyDur    *prometheus.HistogramVec
	filterDur    *prometheus.HistogramVec
	filterErrs   *prometheus.CounterVec
	upstreamDur  *prometheus.HistogramVec
	upstreamErrs *prometheus.CounterVec
	rateLimited  *prometheus.CounterVec
	duplicates   *prometheus.CounterVec
	shadow       *prometheus.CounterVec
	divergence   *prometheus.CounterVec
	stateChecks  *prometheus.CounterVec
	stateOpDur   *prometheus.HistogramVec
	stateOpErrs  *prometheus.CounterVec

	// routes answers a route's children with one or two comparisons, no hash of the name;
	// routeC holds every route's, for the names whose slot in routes another took.
	routes            nametab.Table[*routeSet]
	routeC            cache[string, *routeSet]
	ferrC             cache[filterKey, prometheus.Counter]
	shadowC           cache[filterKey, prometheus.Counter]
	opC               cache[string, *opSet]
	stateOK, stateErr prometheus.Counter

	allowed, denied, failed atomic.Uint64
}

// filterKey is a pair of label values (route and filter, filter and kind, route and result).
type filterKey struct{ a, b string }

// routeSet are one route's children. codes and filters hold the children of the requests
// counter and the filter histogram labelled with the route, found by a scan of the few a
// route has (outcome and code pairs, filter names).
type routeSet struct {
	name                                       string
	dur, policy, upstream                      prometheus.Observer
	upstreamErrs, rateLimited, dupDone, dupNow prometheus.Counter

	mu      sync.Mutex // adds to codes and filters
	codes   list[codeKey, prometheus.Counter]
	filters list[string, prometheus.Observer]
}

type codeKey struct {
	outcome decisionlog.Outcome
	code    int
}

// requests returns the route's requests counter of outcome and code.
func (rs *routeSet) requests(vec *prometheus.CounterVec, outcome decisionlog.Outcome, code int) prometheus.Counter {
	return rs.codes.get(&rs.mu, codeKey{outcome, code}, func() prometheus.Counter {
		return vec.WithLabelValues(rs.name, string(outcome), strconv.Itoa(code))
	})
}

// filter returns the route's filter-duration histogram of filter.
func (rs *routeSet) filter(vec *prometheus.HistogramVec, filter string) prometheus.Observer {
	return rs.filters.get(&rs.mu, filter, func() prometheus.Observer {
		return vec.WithLabelValues(rs.name, filter)
	})
}

// list is a short copy-on-write list from keys to children, read without locking and without
// hashing the key (a scan with ==): the slice is replaced, never changed, by a copy with one
// more pair when a new key appears (keys are bounded by the config and the code).
type list[K comparable, V any] struct {
	p atomic.Pointer[[]pair[K, V]]
}

type pair[K comparable, V any] struct {
	k K
	v V
}

func (l *list[K, V]) find(k K) (V, bool) {
	if cur := l.p.Load(); cur != nil {
		for _, e := range *cur {
			if e.k == k {
				return e.v, true
			}
		}
	}
	var zero V
	return zero, false
}

// get returns k's value, made with newV under mu the first time.
func (l *list[K, V]) get(mu *sync.Mutex, k K, newV func() V) V {
	if v, ok := l.find(k); ok {
		return v
	}
	mu.Lock()
	defer mu.Unlock()
	if v, ok := l.find(k); ok {
		return v
	}
	var next []pair[K, V]
	if cur := l.p.Load(); cur != nil {
		next = append(next, *cur...)
	}
	v := newV()
	next = append(next, pair[K, V]{k, v})
	l.p.Store(&next)
	return v
}

// New returns Metrics with a fresh registry holding the hookwall series, the Go runtime and
// process collectors, and a collector reading src at each scrape.
func New(src Sources) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	f := registrar{m.reg}
	m.requests = f.counter("hookwall_requests_total", "Requests answered, by route, outcome and status code.", "route", "outcome", "code")
	m.requestDur = f.histogram("hookwall_request_duration_seconds", "Time from request read to answer, by route.", requestBuckets, "route")
	m.policyDur = f.histogram("hookwall_policy_duration_seconds", "Rego evaluation time of the route's policy.", stageBuckets, "route")
	m.filterDur = f.histogram("hookwall_filter_duration_seconds", "Time in one filter's request phase, instance acquisition included.", stageBuckets, "route", "filter")
	m.filterErrs = f.counter("hookwall_filter_errors_total", "Failed filter calls by kind (trap, timeout, oom, pool, abi, error).", "filter", "kind")
	m.upstreamDur = f.histogram("hookwall_upstream_duration_seconds", "Time waiting for the upstream, by route.", requestBuckets, "route")
	m.upstreamErrs = f.counter("hookwall_upstream_errors_total", "Forwarded requests that got no upstream answer (refused, reset, timeout).", "route")
	m.rateLimited = f.counter("hookwall_rate_limited_total", "Requests refused by the policy's rate_limit (429).", "route")
	m.duplicates = f.counter("hookwall_duplicates_total", "Requests whose dedupe key was already delivered (200) or in flight (409).", "route", "state")
	m.shadow = f.counter("hookwall_shadow_evaluations_total", "Shadow-policy evaluations by result: agree, disagree (the shadow would have answered differently) or error.", "route", "result")
	m.divergence = f.counter("hookwall_evaluator_divergence_total", "Cross-checked compiled decisions that topdown answered differently, by route.", "route")
	m.stateChecks = f.counter("hookwall_state_checks_total", "Rate-limit and dedupe checks made against the state store, by result.", "result")
	m.stateOpDur = f.histogram("hookwall_state_backend_duration_seconds", "Time of one Redis call, by operation.", stageBuckets, "op")
	m.stateOpErrs = f.counter("hookwall_state_backend_errors_total", "Failed Redis calls, by operation.", "op")
	m.stateOK = m.stateChecks.WithLabelValues("ok")
	m.stateErr = m.stateChecks.WithLabelValues("error")
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newSourceCollector(src),
	)
	return m
}

// Registry returns the registry (tests, extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg, EnableOpenMetrics: true, MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Totals returns how many requests were allowed (forwarded, or accepted onto a queued route),
// refused (denied by the policy or a filter, rate-limited, duplicate, no route, bad method,
// too large, blocked) and failed (errors, upstream failures, unavailable) since New. The status page derives its per-second chart from them.
func (m *Metrics) Totals() (allowed, denied, failed uint64) {
	return m.allowed.Load(), m.denied.Load(), m.failed.Load()
}

// Request implements server.Observer.
func (m *Metrics) Request(route string, outcome decisionlog.Outcome, status int, total time.Duration) {
	rs := m.route(route)
	rs.requests(m.requests, outcome, status).Inc()
	rs.dur.Observe(total.Seconds())
	switch outcome {
	case decisionlog.OutcomeAllowed, decisionlog.OutcomeQueued:
		m.allowed.Add(1)
	case decisionlog.OutcomeRateLimited:
		rs.rateLimited.Inc()
		m.denied.Add(1)
	case decisionlog.OutcomeDuplicate:
		rs.dupDone.Inc()
		m.denied.Add(1)
	case decisionlog.OutcomeInFlight:
		rs.dupNow.Inc()
		m.denied.Add(1)
	case decisionlog.OutcomeDenied, decisionlog.OutcomeFiltered, decisionlog.OutcomeNoRoute,
		decisionlog.OutcomeBadMethod, decisionlog.OutcomeTooLarge, decisionlog.OutcomeBlocked:
		m.denied.Add(1)
	default:
		m.failed.Add(1)
	}
}

// Policy implements server.Observer.
func (m *Metrics) Policy(route string, d time.Duration) { m.route(route).policy.Observe(d.Seconds()) }

// Filter implements server.Observer.
func (m *Metrics) Filter(route, filter string, d time.Duration, errKind string) {
	m.route(route).filter(m.filterDur, filter).Observe(d.Seconds())
	if errKind != "" {
		m.ferrC.get(filterKey{filter, errKind}, func() prometheus.Counter {
			return m.filterErrs.WithLabelValues(filter, errKind)
		}).Inc()
	}
}

// Upstream implements server.Observer.
func (m *Metrics) Upstream(route string, d time.Duration, failed bool) {
	rs := m.route(route)
	rs.upstream.Observe(d.Seconds())
	if failed {
		rs.upstreamErrs.Inc()
	}
}

// State implements server.Observer.
func (m *Metrics) State(failed bool) {
	if failed {
		m.stateErr.Inc()
	} else {
		m.stateOK.Inc()
	}
}

// Shadow implements server.ShadowObserver.
func (m *Metrics) Shadow(route string, agree, failed bool) {
	result := "disagree"
	switch {
	case failed:
		result = "error"
	case agree:
		result = "agree"
	}
	m.shadowC.get(filterKey{route, result}, func() prometheus.Counter {
		return m.shadow.WithLabelValues(route, result)
	}).Inc()
}

// StateOp observes one state-backend call (redis.Options.Observe).
func (m *Metrics) StateOp(op string, d time.Duration, err error) {
	set := m.opC.get(op, func() *opSet {
		return &opSet{dur: m.stateOpDur.WithLabelValues(op), errs: m.stateOpErrs.WithLabelValues(op)}
	})
	set.dur.Observe(d.Seconds())
	if err != nil {
		set.errs.Inc()
	}
}

// opSet are one state operation's children.
type opSet struct {
	dur  prometheus.Observer
	errs prometheus.Counter
}

func (m *Metrics) route(name string) *routeSet {
	if rs, ok := m.routes.Get(name); ok {
		return rs
	}
	return m.routeC.get(name, func() *routeSet {
		rs := &routeSet{
			name:         strings.Clone(name),
			dur:          m.requestDur.WithLabelValues(name),
			policy:       m.policyDur.WithLabelValues(name),
			upstream:     m.upstreamDur.WithLabelValues(name),
			upstreamErrs: m.upstreamErrs.WithLabelValues(name),
			rateLimited:  m.rateLimited.WithLabelValues(name),
			dupDone:      m.duplicates.WithLabelValues(name, "delivered"),
			dupNow:       m.duplicates.WithLabelValues(name, "in_flight"),
		}
		// Put once, where the set is made: a route the table has no slot for would
		// otherwise try again on every call.
		m.routes.Put(rs.name, rs)
		return rs
	})
}

// cache maps label values to a vector's child without locking on the read path: the map is
// replaced, never changed, when a new combination appears (label values are bounded).
type cache[K comparable, V any] struct {
	mu sync.Mutex
	p  atomic.Pointer[map[K]V]
}

func (c *cache[K, V]) get(k K, newV func() V) V {
	if m := c.p.Load(); m != nil {
		if v, ok := (*m)[k]; ok {
			return v
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	next := map[K]V{}
	if cur := c.p.Load(); cur != nil {
		if v, ok := (*cur)[k]; ok {
			return v
		}
		next = maps.Clone(*cur)
	}
	v := newV()
	next[k] = v
	c.p.Store(&next)
	return v
}

// registrar registers vectors on one registry (named apart from client_golang's promauto,
// which registers on the global one).
type registrar struct{ reg *prometheus.Registry }

func (p registrar) counter(name, help string, labels ...string) *prometheus.CounterVec {
	v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	p.reg.MustRegister(v)
	return v
}

func (p registrar) histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	v := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels)
	p.reg.MustRegister(v)
	return v
}
