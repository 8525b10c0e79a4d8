package metrics

import "github.com/prometheus/client_golang/prometheus"

// CrossCheckStats are the cross-check's counters of sampled compiled decisions: evaluated
// again with topdown, dropped by its full queue, skipped over [policies] cross_check_max.
type CrossCheckStats struct {
	Checked, Dropped, Skipped uint64
}

// crossCheckCollector reports the cross-check's counters at scrape time.
type crossCheckCollector struct {
	stats func() CrossCheckStats
	desc  *prometheus.Desc
}

// NewCrossCheckCollector returns a collector of the counters stats returns, to register
// with Metrics.Registry.
func NewCrossCheckCollector(stats func() CrossCheckStats) prometheus.Collector {
	return &crossCheckCollector{stats: stats, desc: prometheus.NewDesc("hookwall_cross_checks_total",
		"Compiled decisions sampled for the cross-check, by what became of them: checked (evaluated again with topdown), dropped (its queue was full), skipped (over [policies] cross_check_max).",
		[]string{"result"}, nil)}
}

func (c *crossCheckCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *crossCheckCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.stats()
	for _, r := range []struct {
		result string
		n      uint64
	}{{"checked", st.Checked}, {"dropped", st.Dropped}, {"skipped", st.Skipped}} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(r.n), r.result)
	}
}
