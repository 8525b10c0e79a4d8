package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookwall/hookwall/engine/oauth"
)

// oauthCollector reports each [[oauth]] issuer's state at scrape time. Its label is the
// issuer's configured name, never a value from a request.
type oauthCollector struct {
	stats                                         func() []oauth.Stats
	keys, lastRefresh, refreshes, failures, stale *prometheus.Desc
	introspections, introspectionErrors           *prometheus.Desc
}

// NewOAuthCollector returns a collector of the issuers stats returns (the live snapshot's),
// to register with Metrics.Registry.
func NewOAuthCollector(stats func() []oauth.Stats) prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, []string{"issuer"}, nil)
	}
	return &oauthCollector{
		stats:               stats,
		keys:                d("hookwall_oauth_keys", "Keys in the issuer's serving key set (0 before the first fetch)."),
		lastRefresh:         d("hookwall_oauth_last_refresh_timestamp_seconds", "When the serving key set was fetched."),
		refreshes:           d("hookwall_oauth_key_fetches_total", "Key set fetches that succeeded (since the issuer was configured as it is)."),
		failures:            d("hookwall_oauth_key_fetch_failures_total", "Key set fetches that failed; the last good set kept serving."),
		stale:               d("hookwall_oauth_keys_stale", "1 when the key set is past cache_ttl + max_stale (or missing): every token is refused."),
		introspections:      d("hookwall_oauth_introspections_total", "Calls of the introspection endpoint (cache misses)."),
		introspectionErrors: d("hookwall_oauth_introspection_errors_total", "Introspection calls that failed; their tokens were refused."),
	}
}

func (c *oauthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.keys, c.lastRefresh, c.refreshes, c.failures, c.stale, c.introspections, c.introspectionErrors} {
		ch <- d
	}
}

func (c *oauthCollector) Collect(ch chan<- prometheus.Metric) {
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	m := prometheus.MustNewConstMetric
	for _, st := range c.stats() {
		ch <- m(c.keys, gauge, float64(st.Keys), st.Name)
		if !st.LastRefresh.IsZero() {
			ch <- m(c.lastRefresh, gauge, float64(st.LastRefresh.UnixNano())/1e9, st.Name)
		}
		ch <- m(c.refreshes, counter, float64(st.Refreshes), st.Name)
		ch <- m(c.failures, counter, float64(st.Failures), st.Name)
		stale := 0.0
		if st.Stale {
			stale = 1
		}
		ch <- m(c.stale, gauge, stale, st.Name)
		ch <- m(c.introspections, counter, float64(st.Introspections), st.Name)
		ch <- m(c.introspectionErrors, counter, float64(st.IntrospectionErrors), st.Name)
	}
}
