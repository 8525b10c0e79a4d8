package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hookwall/hookwall/engine/filter"
)

// sourceCollector turns the components' own counters into series at scrape time, so the
// request path pays nothing for them.
type sourceCollector struct {
	src Sources

	poolSize, poolMax, poolInstances, poolWaits, created, discarded, shrunk *prometheus.Desc
	guestLogDropped                                                         *prometheus.Desc
	stateKeys, stateBytes, stateEvictions, stateDedupeEvictions             *prometheus.Desc
	logWritten, logDropped, logErrors                                       *prometheus.Desc
	reloads, lastOK, lastSuccess, revision                                  *prometheus.Desc
	crossChecks                                                             *prometheus.Desc
}

func newSourceCollector(src Sources) *sourceCollector {
	d := prometheus.NewDesc
	return &sourceCollector{
		src:                  src,
		poolSize:             d("hookwall_filter_pool_size", "Instances a filter keeps warm ([[filter]] pool).", []string{"filter"}, nil),
		poolMax:              d("hookwall_filter_pool_max", "Bound on a filter's instances ([[filter]] pool_max); past pool they are created on demand.", []string{"filter"}, nil),
		poolInstances:        d("hookwall_filter_pool_instances", "A filter's instances: live (existing), idle (pooled) and in_use.", []string{"filter", "state"}, nil),
		poolWaits:            d("hookwall_filter_pool_waits_total", "Acquisitions that found every instance busy and waited (every module the name had since start).", []string{"filter"}, nil),
		created:              d("hookwall_filter_instances_created_total", "Instances instantiated (every module the name had since start).", []string{"filter"}, nil),
		discarded:            d("hookwall_filter_instances_discarded_total", "Instances closed after a trap, timeout or error (every module the name had since start).", []string{"filter"}, nil),
		shrunk:               d("hookwall_filter_instances_shrunk_total", "Instances above pool closed after staying idle (every module the name had since start).", []string{"filter"}, nil),
		guestLogDropped:      d("hookwall_filter_log_dropped_bytes_total", "Bytes of guest log output (log calls, stdout, stderr) dropped over the per-call or per-second budget, or cut from over-long messages (every module the name had since start).", []string{"filter"}, nil),
		stateKeys:            d("hookwall_state_keys", "Keys held by the in-memory state store.", nil, nil),
		stateBytes:           d("hookwall_state_bytes", "Bytes the in-memory state store counts for its keys (key lengths plus a fixed overhead per entry), bounded by [state] max_bytes.", nil, nil),
		stateEvictions:       d("hookwall_state_evictions_total", "Live keys the in-memory state store dropped because it was full (max_keys or max_bytes).", nil, nil),
		stateDedupeEvictions: d("hookwall_state_dedupe_evictions_total", "Of hookwall_state_evictions_total, the dedupe keys: each reopened a replay window before its TTL (rate-limit keys go first).", nil, nil),
		logWritten:           d("hookwall_decision_log_written_total", "Decision-log records written.", nil, nil),
		logDropped:           d("hookwall_decision_log_dropped_total", "Decision-log records lost: the writer fell behind, or a write failed before them.", nil, nil),
		logErrors:            d("hookwall_decision_log_write_errors_total", "Failed decision-log writes (full disk, I/O error, a closed pipe); the records not written whole count as dropped.", nil, nil),
		reloads:              d("hookwall_reloads_total", "Reload attempts by result (ok: applied; error: refused, the previous snapshot kept serving).", []string{"result"}, nil),
		lastOK:               d("hookwall_config_last_reload_successful", "Whether the last reload attempt applied (1) or was refused (0).", nil, nil),
		lastSuccess:          d("hookwall_config_last_reload_success_timestamp_seconds", "When the serving snapshot was loaded.", nil, nil),
		revision:             d("hookwall_revision_info", "The serving snapshot's revision, as a label (always 1).", []string{"revision"}, nil),
		crossChecks: d("hookwall_cross_checks_total",
			"Compiled decisions sampled for the cross-check, by what became of them: checked (evaluated again with topdown), dropped (its queue was full), skipped (over [policies] cross_check_max).",
			[]string{"result"}, nil),
	}
}

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.poolSize, c.poolMax, c.poolInstances, c.poolWaits, c.created, c.discarded, c.shrunk, c.guestLogDropped, c.stateKeys, c.stateBytes, c.stateEvictions, c.stateDedupeEvictions,
		c.logWritten, c.logDropped, c.logErrors, c.reloads, c.lastOK, c.lastSuccess, c.revision, c.crossChecks,
	} {
		ch <- d
	}
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	m := prometheus.MustNewConstMetric
	if c.src.Filters != nil {
		c.src.Filters(func(name string, st filter.Stats) {
			ch <- m(c.poolSize, gauge, float64(st.Pool), name)
			ch <- m(c.poolMax, gauge, float64(st.Max), name)
			ch <- m(c.poolInstances, gauge, float64(st.Live), name, "live")
			ch <- m(c.poolInstances, gauge, float64(st.Idle), name, "idle")
			ch <- m(c.poolInstances, gauge, float64(st.InUse), name, "in_use")
			ch <- m(c.poolWaits, counter, float64(st.Waits), name)
			ch <- m(c.created, counter, float64(st.Created), name)
			ch <- m(c.discarded, counter, float64(st.Discarded), name)
			ch <- m(c.shrunk, counter, float64(st.Shrunk), name)
			ch <- m(c.guestLogDropped, counter, float64(st.LogDropped), name)
		})
	}
	if c.src.State != nil {
		if st := c.src.State(); st.Memory {
			ch <- m(c.stateKeys, gauge, float64(st.Keys))
			ch <- m(c.stateBytes, gauge, float64(st.Bytes))
			ch <- m(c.stateEvictions, counter, float64(st.Evictions))
			ch <- m(c.stateDedupeEvictions, counter, float64(st.DedupeEvictions))
		}
	}
	if c.src.DecisionLog != nil {
		st := c.src.DecisionLog()
		ch <- m(c.logWritten, counter, float64(st.Written))
		ch <- m(c.logDropped, counter, float64(st.Dropped))
		ch <- m(c.logErrors, counter, float64(st.WriteErrors))
	}
	if c.src.Reload != nil {
		if st, ok := c.src.Reload(); ok {
			ch <- m(c.reloads, counter, float64(st.Reloads), "ok")
			ch <- m(c.reloads, counter, float64(st.Failures), "error")
			ok := 0.0
			if st.LastOK {
				ok = 1
			}
			ch <- m(c.lastOK, gauge, ok)
			if !st.LastSuccess.IsZero() {
				ch <- m(c.lastSuccess, gauge, float64(st.LastSuccess.UnixNano())/1e9)
			}
			if st.Revision != "" {
				ch <- m(c.revision, gauge, 1, st.Revision)
			}
		}
	}
	if c.src.CrossCheck != nil {
		st := c.src.CrossCheck()
		ch <- m(c.crossChecks, counter, float64(st.Checked), "checked")
		ch <- m(c.crossChecks, counter, float64(st.Dropped), "dropped")
		ch <- m(c.crossChecks, counter, float64(st.Skipped), "skipped")
	}
}
