package gateway

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/metrics"
	"github.com/hookwall/hookwall/engine/oauth"
	"github.com/hookwall/hookwall/engine/state/memory"
)

// observability is what a gateway keeps for people watching it: the Prometheus registry
// (served on the admin listener's /metrics), the last decisions (fed by the decision log) and
// the per-second counts of the status page's chart. It lives as long as the gateway, across
// reloads.
type observability struct {
	metrics *metrics.Metrics
	recent  *recentRing
	rates   *rateRing
	unsub   func()
	// lastReload is what the reload collector reports while a reload holds the gateway's lock.
	lastReload atomic.Pointer[metrics.ReloadStats]
}

// recentDecisions is how many decisions the status page lists.
const recentDecisions = 100

// rateWindow is how many seconds the status page's chart covers.
const rateWindow = 120

func newObservability(g *Gateway) *observability {
	o := &observability{recent: newRecentRing(recentDecisions), rates: newRateRing(rateWindow)}
	o.metrics = metrics.New(metrics.Sources{
		Filters:     g.filterStats,
		State:       g.stateStats,
		DecisionLog: func() decisionlog.Stats { return g.dlog.Stats() },
		Reload:      g.reloadStats,
		CrossCheck:  g.crossCheckStats,
	})
	o.metrics.Registry().MustRegister(metrics.NewOAuthCollector(g.oauthStats))
	return o
}

// attach subscribes the status page's ring to the decision log (nil when the log is off).
func (o *observability) attach(l *decisionlog.Logger) {
	o.unsub = l.Subscribe(o.recent.add)
}

// stateObserver is the Redis call observer (nil-safe on o).
func (o *observability) stateObserver() func(op string, d time.Duration, err error) {
	if o == nil {
		return nil
	}
	return o.metrics.StateOp
}

// ReopenLog reopens the decision-log file (logrotate: cmd/hookwall calls it on SIGUSR1). A
// log on stdout or off is left as it is.
func (g *Gateway) ReopenLog() error { return g.dlog.Reopen() }

// Metrics returns the gateway's metrics (its registry is served on the admin listener).
func (g *Gateway) Metrics() *metrics.Metrics { return g.obs.metrics }

// runSampler records the per-second request counts for the status page until ctx ends.
func (o *observability) runSampler(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	// From zero, not from the totals when this goroutine first runs: requests served
	// before it was scheduled belong in the first sample, or the chart never adds up to
	// the traffic.
	var a, d, f uint64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			na, nd, nf := o.metrics.Totals()
			o.rates.add(rateSample{T: now.Unix(), Allowed: na - a, Denied: nd - d, Failed: nf - f})
			a, d, f = na, nd, nf
		}
	}
}

func (g *Gateway) filterStats(yield func(name string, st filter.Stats)) {
	snap := g.snaps.Acquire()
	if snap == nil {
		return
	}
	defer snap.Release()
	names := make([]string, 0, len(snap.Filters))
	for n := range snap.Filters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		yield(n, snap.Filters[n].Stats())
	}
}

// oauthStats are the live snapshot's [[oauth]] issuers' stats.
func (g *Gateway) oauthStats() []oauth.Stats {
	snap := g.snaps.Acquire()
	if snap == nil {
		return nil
	}
	defer snap.Release()
	return snap.OAuth.Stats()
}

func (g *Gateway) stateStats() metrics.StateStats {
	if g.store == nil {
		return metrics.StateStats{}
	}
	if ms, ok := g.store.Backend().(*memory.Store); ok {
		st := ms.Stats()
		return metrics.StateStats{Memory: true, Keys: st.Keys, Bytes: st.Bytes, Evictions: st.Evictions, DedupeEvictions: st.DedupeEvictions}
	}
	return metrics.StateStats{}
}

// reloadStats reads the reload counters without waiting for a reload in progress (which
// holds g.mu while it compiles): a scrape then gets the values seen last.
func (g *Gateway) reloadStats() (metrics.ReloadStats, bool) {
	if !g.mu.TryLock() {
		if last := g.obs.lastReload.Load(); last != nil {
			return *last, true
		}
		return metrics.ReloadStats{}, false
	}
	st := g.status
	g.mu.Unlock()
	rs := metrics.ReloadStats{Revision: st.Revision, Reloads: st.Reloads, Failures: st.Failures, LastOK: st.LastResult == ReloadOK, LastSuccess: st.LoadedAt}
	if rs.LastOK && st.LastAttempt.After(rs.LastSuccess) {
		rs.LastSuccess = st.LastAttempt
	}
	g.obs.lastReload.Store(&rs)
	return rs, true
}

// recentRing keeps the last decision-log lines, newest last. add runs on the log's writer
// goroutine; reading copies.
type recentRing struct {
	mu    sync.Mutex
	lines [][]byte
	next  int
	full  bool
}

func newRecentRing(n int) *recentRing { return &recentRing{lines: make([][]byte, n)} }

func (r *recentRing) add(line []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines[r.next] = append(r.lines[r.next][:0], line...)
	r.next++
	if r.next == len(r.lines) {
		r.next, r.full = 0, true
	}
}

// snapshot returns copies of the lines, newest first.
func (r *recentRing) snapshot() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	if r.full {
		n = len(r.lines)
	}
	out := make([][]byte, 0, n)
	for i := 1; i <= n; i++ {
		j := (r.next - i + len(r.lines)) % len(r.lines)
		out = append(out, append([]byte(nil), r.lines[j]...))
	}
	return out
}

// rateSample is one second of traffic.
type rateSample struct {
	T       int64  `json:"t"` // unix seconds
	Allowed uint64 `json:"allowed"`
	Denied  uint64 `json:"denied"`
	Failed  uint64 `json:"failed"`
}

type rateRing struct {
	mu      sync.Mutex
	samples []rateSample
	next    int
	full    bool
}

func newRateRing(n int) *rateRing { return &rateRing{samples: make([]rateSample, n)} }

func (r *rateRing) add(s rateSample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.samples[r.next] = s
	r.next++
	if r.next == len(r.samples) {
		r.next, r.full = 0, true
	}
}

// snapshot returns the samples, oldest first.
func (r *rateRing) snapshot() []rateSample {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return append([]rateSample(nil), r.samples[:r.next]...)
	}
	return append(append([]rateSample(nil), r.samples[r.next:]...), r.samples[:r.next]...)
}

// crossCheckStats reads the public server's cross-check counters (zero before it exists).
func (g *Gateway) crossCheckStats() (st metrics.CrossCheckStats) {
	if g.srv != nil {
		st.Checked, st.Dropped, st.Skipped = g.srv.CrossCheckStats()
	}
	return st
}
