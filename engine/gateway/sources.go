package gateway

import (
	"errors"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/state/redis"
	"github.com/hookwall/hookwall/engine/watch"
)

// newSourceWatcher builds the [watch] watcher (nil when watching is off). It lives as long as
// the gateway: its windows survive reloads. Blocks are shared through the Redis state backend
// when there is one.
func (g *Gateway) newSourceWatcher(cfg *config.Config) (*watch.Watcher, error) {
	if !cfg.Watch.Enabled {
		return nil, nil
	}
	o := watch.Options{Config: cfg.Watch, Logger: g.log, Secret: g.liveSecret}
	if rs, ok := g.store.Backend().(*redis.Store); ok {
		o.Fleet = rs
	}
	host, _ := os.Hostname()
	o.Gateway = host + ":" + strconv.Itoa(os.Getpid())
	w, err := watch.New(o)
	if err != nil {
		return nil, errors.New(cfg.File + ": " + err.Error())
	}
	return w, nil
}

// liveSecret reads a secret of the live snapshot (the alert key follows reloads).
func (g *Gateway) liveSecret(name string) ([]byte, bool) {
	snap := g.snaps.Acquire()
	if snap == nil {
		return nil, false
	}
	defer snap.Release()
	return snap.Secrets.Get(name)
}

// mountBlocks adds the blocks API to the admin mux.
func (a *admin) mountBlocks() {
	a.mux.HandleFunc("GET /-/blocks", a.auth(a.listBlocks))
	a.mux.HandleFunc("DELETE /-/blocks/{source}", a.auth(a.liftBlock))
}

func (a *admin) listBlocks(w http.ResponseWriter, _ *http.Request) {
	wt := a.g.sources
	if wt == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "watching is off ([watch] is not configured)"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"blocks": wt.Blocks(time.Now())})
}

func (a *admin) liftBlock(w http.ResponseWriter, r *http.Request) {
	wt := a.g.sources
	if wt == nil {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "watching is off ([watch] is not configured)"})
		return
	}
	source := r.PathValue("source")
	found, err := wt.Lift(r.Context(), source)
	switch {
	case err != nil:
		writeJSON(w, http.StatusBadGateway, map[string]string{"result": "error", "source": source, "error": err.Error()})
	case !found:
		writeJSON(w, http.StatusNotFound, map[string]string{"result": "not_found", "source": source})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"result": "lifted", "source": source})
	}
}

// watchCollector reads the watcher's counters at scrape time.
type watchCollector struct {
	w                                       *watch.Watcher
	anomalies, sources, capacity, evictions *prometheus.Desc
	blocks, alerts, fleetErrs               *prometheus.Desc
	blockCapacity, blocksRefused            *prometheus.Desc
}

func newWatchCollector(w *watch.Watcher) *watchCollector {
	d := prometheus.NewDesc
	return &watchCollector{
		w:             w,
		anomalies:     d("hookwall_anomalies_total", "Anomalies raised, by the route of the request that raised them and the reason class.", []string{"route", "kind"}, nil),
		sources:       d("hookwall_watch_sources", "Sources (client IPs and senders) the watcher tracks.", nil, nil),
		capacity:      d("hookwall_watch_sources_capacity", "Slots of the watcher's source table ([watch] max_sources, rounded up to a power of two).", nil, nil),
		evictions:     d("hookwall_watch_evictions_total", "Sources evicted from the watcher's table to make room for new ones.", nil, nil),
		blocks:        d("hookwall_watch_blocks", "Sources blocked now.", nil, nil),
		alerts:        d("hookwall_watch_alerts_total", "Anomaly alerts by result: sent, failed (after the last retry), dropped (queue full).", []string{"result"}, nil),
		fleetErrs:     d("hookwall_watch_fleet_errors_total", "Failed reads and writes of the blocks shared through the state backend.", nil, nil),
		blockCapacity: d("hookwall_watch_blocks_capacity", "Blocks the watcher holds at most ([watch] max_blocks).", nil, nil),
		blocksRefused: d("hookwall_watch_blocks_refused_total", "Blocks not placed (or not read from the fleet) because the block table was full.", nil, nil),
	}
}

func (c *watchCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.anomalies, c.sources, c.capacity, c.evictions, c.blocks, c.alerts, c.fleetErrs, c.blockCapacity, c.blocksRefused} {
		ch <- d
	}
}

func (c *watchCollector) Collect(ch chan<- prometheus.Metric) {
	m, gauge, counter := prometheus.MustNewConstMetric, prometheus.GaugeValue, prometheus.CounterValue
	c.w.Counts(func(route, kind string, n uint64) { ch <- m(c.anomalies, counter, float64(n), route, kind) })
	st := c.w.Stats()
	ch <- m(c.sources, gauge, float64(st.Sources))
	ch <- m(c.capacity, gauge, float64(st.Capacity))
	ch <- m(c.evictions, counter, float64(st.Evictions))
	ch <- m(c.blocks, gauge, float64(st.Blocks))
	ch <- m(c.alerts, counter, float64(st.AlertsSent), "sent")
	ch <- m(c.alerts, counter, float64(st.AlertsFailed), "failed")
	ch <- m(c.alerts, counter, float64(st.AlertsDropped), "dropped")
	ch <- m(c.fleetErrs, counter, float64(st.FleetErrors))
	ch <- m(c.blockCapacity, gauge, float64(st.BlockCapacity))
	ch <- m(c.blocksRefused, counter, float64(st.BlocksRefused))
}
