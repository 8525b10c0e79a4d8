package metrics

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/internal/server"
)

var (
	_ server.Observer       = (*Metrics)(nil)
	_ server.ShadowObserver = (*Metrics)(nil)
)

func gather(t *testing.T, m *Metrics) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

// get returns the series' value (a histogram's count); -1 when absent.
func get(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	for _, m := range f.Metric {
		if len(m.Label) != len(labels)/2 {
			continue
		}
		ok := true
		for _, l := range m.Label {
			found := false
			for i := 0; i < len(labels); i += 2 {
				found = found || (labels[i] == l.GetName() && labels[i+1] == l.GetValue())
			}
			ok = ok && found
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

func TestObserverCounts(t *testing.T) {
	m := New(Sources{})
	// 4 goroutines × 250 requests of each kind: the cache must not lose or double counts.
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 250 {
				m.Request("a", decisionlog.OutcomeAllowed, 200, time.Millisecond)
				m.Request("a", decisionlog.OutcomeRateLimited, 429, time.Millisecond)
				m.Request("b", decisionlog.OutcomeDuplicate, 200, time.Millisecond)
				m.Request("b", decisionlog.OutcomeInFlight, 409, time.Millisecond)
				m.Request("", decisionlog.OutcomeNoRoute, 404, 0)
				m.Request("a", decisionlog.OutcomeUpstream, 502, time.Second)
				m.Policy("a", 50*time.Microsecond)
				m.Filter("a", "guard", 20*time.Microsecond, "")
				m.Filter("a", "guard", 20*time.Microsecond, string(filter.KindTimeout))
				m.Upstream("a", time.Millisecond, true)
				m.State(false)
				m.State(true)
				m.Shadow("a", true, false)
				m.Shadow("a", false, false)
				m.Shadow("a", false, true)
				m.Divergence("a")
				m.StateOp("admit", time.Millisecond, nil)
				m.StateOp("admit", time.Millisecond, errors.New("down"))
			}
		}()
	}
	wg.Wait()
	f := gather(t, m)
	want := []struct {
		name   string
		labels []string
		v      float64
	}{
		{"hookwall_requests_total", []string{"route", "a", "outcome", "allowed", "code", "200"}, 1000},
		{"hookwall_requests_total", []string{"route", "a", "outcome", "rate_limited", "code", "429"}, 1000},
		{"hookwall_requests_total", []string{"route", "", "outcome", "no_route", "code", "404"}, 1000},
		{"hookwall_request_duration_seconds", []string{"route", "a"}, 3000},
		{"hookwall_rate_limited_total", []string{"route", "a"}, 1000},
		{"hookwall_duplicates_total", []string{"route", "b", "state", "delivered"}, 1000},
		{"hookwall_duplicates_total", []string{"route", "b", "state", "in_flight"}, 1000},
		{"hookwall_policy_duration_seconds", []string{"route", "a"}, 1000},
		{"hookwall_filter_duration_seconds", []string{"route", "a", "filter", "guard"}, 2000},
		{"hookwall_filter_errors_total", []string{"filter", "guard", "kind", "timeout"}, 1000},
		{"hookwall_upstream_duration_seconds", []string{"route", "a"}, 1000},
		{"hookwall_upstream_errors_total", []string{"route", "a"}, 1000},
		{"hookwall_state_checks_total", []string{"result", "ok"}, 1000},
		{"hookwall_state_checks_total", []string{"result", "error"}, 1000},
		{"hookwall_shadow_evaluations_total", []string{"route", "a", "result", "agree"}, 1000},
		{"hookwall_shadow_evaluations_total", []string{"route", "a", "result", "disagree"}, 1000},
		{"hookwall_shadow_evaluations_total", []string{"route", "a", "result", "error"}, 1000},
		{"hookwall_evaluator_divergence_total", []string{"route", "a"}, 1000},
		{"hookwall_state_backend_duration_seconds", []string{"op", "admit"}, 2000},
		{"hookwall_state_backend_errors_total", []string{"op", "admit"}, 1000},
	}
	for _, w := range want {
		if got := get(f, w.name, w.labels...); got != w.v {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.v)
		}
	}
	a, d, fl := m.Totals()
	if a != 1000 || d != 4000 || fl != 1000 {
		t.Errorf("totals allowed %d denied %d failed %d, want 1000 4000 1000 (rate-limited, duplicate, in flight and no route are refusals)", a, d, fl)
	}
	// A webhook accepted onto a queued route (202) is allowed, not failed.
	m.Request("q", decisionlog.OutcomeQueued, 202, time.Millisecond)
	if a2, d2, fl2 := m.Totals(); a2 != a+1 || d2 != d || fl2 != fl {
		t.Errorf("after a queued request: totals allowed %d denied %d failed %d, want %d %d %d", a2, d2, fl2, a+1, d, fl)
	}
	// Durations land in seconds: the upstream errors took 1s each.
	if h := f["hookwall_request_duration_seconds"]; h == nil || !strings.Contains(h.String(), "sample_sum") {
		t.Fatal("no request histogram")
	}
}

// Each route's series count its own requests, filters and outcomes, for more routes than the
// table that finds a route's children without hashing holds (the rest are found in the map
// behind it), each with several outcomes, codes and filters.
func TestObserverManyRoutes(t *testing.T) {
	m := New(Sources{})
	const routes = 600
	for round := range 3 {
		for r := range routes {
			route := "route-" + strconv.Itoa(r)
			for range r%3 + 1 {
				m.Request(route, decisionlog.OutcomeAllowed, 200, time.Millisecond)
			}
			m.Request(route, decisionlog.OutcomeDenied, 403+r%2, time.Millisecond)
			m.Request(route, decisionlog.OutcomeUpstream, 502, time.Millisecond)
			m.Request(route, decisionlog.OutcomeDuplicate, 200, time.Millisecond) // allowed's code
			m.Filter(route, "guard", time.Microsecond, "")
			if round > 0 {
				m.Filter(route, "tiny-"+strconv.Itoa(r%5), time.Microsecond, "")
			}
		}
	}
	f := gather(t, m)
	for r := range routes {
		route := "route-" + strconv.Itoa(r)
		for _, w := range []struct {
			name   string
			labels []string
			v      float64
		}{
			{"hookwall_requests_total", []string{"route", route, "outcome", "allowed", "code", "200"}, float64(3 * (r%3 + 1))},
			{"hookwall_requests_total", []string{"route", route, "outcome", "denied", "code", strconv.Itoa(403 + r%2)}, 3},
			{"hookwall_requests_total", []string{"route", route, "outcome", "denied", "code", strconv.Itoa(404 - r%2)}, -1},
			{"hookwall_requests_total", []string{"route", route, "outcome", "upstream_error", "code", "502"}, 3},
			{"hookwall_requests_total", []string{"route", route, "outcome", "duplicate", "code", "200"}, 3},
			{"hookwall_request_duration_seconds", []string{"route", route}, float64(3 * (r%3 + 4))},
			{"hookwall_filter_duration_seconds", []string{"route", route, "filter", "guard"}, 3},
			{"hookwall_filter_duration_seconds", []string{"route", route, "filter", "tiny-" + strconv.Itoa(r%5)}, 2},
			{"hookwall_filter_duration_seconds", []string{"route", route, "filter", "tiny-" + strconv.Itoa((r+1)%5)}, -1},
		} {
			if got := get(f, w.name, w.labels...); got != w.v {
				t.Fatalf("%s%v = %v, want %v", w.name, w.labels, got, w.v)
			}
		}
	}
}

func TestSourcesAtScrape(t *testing.T) {
	reload := ReloadStats{Revision: "abc123", Reloads: 3, Failures: 1, LastOK: false, LastSuccess: time.Unix(1700000000, 0)}
	m := New(Sources{
		Filters: func(yield func(string, filter.Stats)) {
			yield("guard", filter.Stats{Pool: 4, Live: 3, Idle: 2, InUse: 1, Waits: 7, Created: 9, Discarded: 2})
		},
		State:       func() StateStats { return StateStats{Memory: true, Keys: 42, Evictions: 5, DedupeEvictions: 3} },
		DecisionLog: func() decisionlog.Stats { return decisionlog.Stats{Written: 10, Dropped: 2, WriteErrors: 1} },
		Reload:      func() (ReloadStats, bool) { return reload, true },
	})
	f := gather(t, m)
	want := []struct {
		name   string
		labels []string
		v      float64
	}{
		{"hookwall_filter_pool_size", []string{"filter", "guard"}, 4},
		{"hookwall_filter_pool_instances", []string{"filter", "guard", "state", "live"}, 3},
		{"hookwall_filter_pool_instances", []string{"filter", "guard", "state", "idle"}, 2},
		{"hookwall_filter_pool_instances", []string{"filter", "guard", "state", "in_use"}, 1},
		{"hookwall_filter_pool_waits_total", []string{"filter", "guard"}, 7},
		{"hookwall_filter_instances_created_total", []string{"filter", "guard"}, 9},
		{"hookwall_filter_instances_discarded_total", []string{"filter", "guard"}, 2},
		{"hookwall_state_keys", nil, 42},
		{"hookwall_state_evictions_total", nil, 5},
		{"hookwall_state_dedupe_evictions_total", nil, 3},
		{"hookwall_decision_log_written_total", nil, 10},
		{"hookwall_decision_log_dropped_total", nil, 2},
		{"hookwall_decision_log_write_errors_total", nil, 1},
		{"hookwall_reloads_total", []string{"result", "ok"}, 3},
		{"hookwall_reloads_total", []string{"result", "error"}, 1},
		{"hookwall_config_last_reload_successful", nil, 0},
		{"hookwall_config_last_reload_success_timestamp_seconds", nil, 1700000000},
		{"hookwall_revision_info", []string{"revision", "abc123"}, 1},
	}
	for _, w := range want {
		if got := get(f, w.name, w.labels...); got != w.v {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.v)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_open_fds"} {
		if f[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	// Two gateways in one process have separate registries.
	other := New(Sources{})
	other.Request("a", decisionlog.OutcomeAllowed, 200, 0)
	if got := get(gather(t, m), "hookwall_requests_total", "route", "a", "outcome", "allowed", "code", "200"); got != -1 {
		t.Errorf("a second Metrics shares the first's series: %v", got)
	}
}
