package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/internal/testutil"
	"github.com/hookwall/hookwall/engine/metrics"
)

// oblPolicy allows what the guard filter passed, denies on request, errors on request, and
// asks for dedupe and rate limiting by header.
const oblPolicy = `package routes.obl

default allow := false

allow if input.filters.guard.labels.verdict == "ok"

deny contains "policy says no" if input.request.headers["x-policy-deny"]

# Every deny rule is evaluated: x-n: 0 makes the evaluation fail (division by zero).
deny contains "negative" if {
	x := to_number(input.request.headers["x-n"])
	1 / x < 0
}

dedupe := {"key": input.request.headers["x-delivery"], "ttl": "1h"} if input.request.headers["x-delivery"]

rate_limit := {"key": concat(":", ["rl", input.request.headers["x-client"]]), "limit": 1, "per": "1m"} if input.request.headers["x-client"]

labels := {"kind": "obligations"}
`

const liveShadowed = "package routes.live\n\nallow := true\n"

// strictShadow would refuse every tenant but acme, with 451.
const strictShadow = `package routes.strict

default allow := false

allow if input.request.headers["x-tenant"] == "acme"

status := 451 if not allow
`

const observabilityConfig = `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[policies]
dir = "policies"
watch = false

[log]
decisions = "{{DIR}}/decisions.log"
mask = ["X-Tenant", "X-Internal-*"]
body = "16B"

[[filter]]
name = "guard"
module = "filters/denyheader.wasm"
pool = 2

[[route]]
name = "obl"
path = "/hooks/obl"
upstream = "{{UPSTREAM}}"
policy = "routes.obl"
filters = ["guard"]

[[route]]
name = "shadowed"
path = "/hooks/shadowed"
upstream = "{{UPSTREAM}}"
policy = "routes.live"
shadow_policy = "routes.strict"
`

func startObservability(t *testing.T) (*env, *upstream) {
	t.Helper()
	wasm, err := os.ReadFile(filepath.Join("testdata", "denyheader.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	up := startUpstream(t)
	e := startEnv(t, strings.ReplaceAll(observabilityConfig, "{{UPSTREAM}}", up.URL()), map[string]string{
		"policies/obl.rego":       oblPolicy,
		"policies/live.rego":      liveShadowed,
		"policies/strict.rego":    strictShadow,
		"filters/denyheader.wasm": string(wasm),
	}, Options{})
	return e, up
}

// secretHeaders ride on every request: none of their values may reach the log.
var secretHeaders = map[string]string{
	"Authorization":       "Bearer tok-SECRET-1",
	"Cookie":              "session=SECRET-2",
	"X-Hub-Signature-256": "sha256=SECRET-3",
	"X-Internal-Trace":    "SECRET-4",
}

func obsHeaders(extra map[string]string) map[string]string {
	h := map[string]string{"X-Tenant": "SECRET-TENANT"}
	for k, v := range secretHeaders {
		h[k] = v
	}
	for k, v := range extra {
		h[k] = v
	}
	return h
}

// knownTraffic sends one request of each outcome; the tests below count on exactly this.
func knownTraffic(t *testing.T, e *env) {
	t.Helper()
	body := []byte(`{"event":"push","padding":"0123456789"}`) // 39 bytes; the log keeps 16
	steps := []struct {
		path    string
		headers map[string]string
		status  int
	}{
		{"/hooks/obl", obsHeaders(map[string]string{"X-Delivery": "d-1"}), 200},      // allowed
		{"/hooks/obl", obsHeaders(map[string]string{"X-Delivery": "d-1"}), 200},      // duplicate
		{"/hooks/obl", obsHeaders(map[string]string{"X-Deny": "1"}), 403},            // denied by the filter
		{"/hooks/obl", obsHeaders(map[string]string{"X-Client": "c-1"}), 200},        // allowed
		{"/hooks/obl", obsHeaders(map[string]string{"X-Client": "c-1"}), 429},        // rate-limited
		{"/hooks/obl", obsHeaders(map[string]string{"X-Policy-Deny": "1"}), 403},     // denied by the policy
		{"/hooks/obl", obsHeaders(map[string]string{"X-N": "0"}), 500},               // policy evaluation error
		{"/hooks/obl", obsHeaders(map[string]string{"X-Trap": "1"}), 500},            // filter trap (on_error = deny)
		{"/hooks/shadowed", obsHeaders(map[string]string{"X-Tenant": "acme"}), 200},  // shadow agrees
		{"/hooks/shadowed", obsHeaders(map[string]string{"X-Tenant": "other"}), 200}, // shadow would refuse (451)
		{"/nope", obsHeaders(nil), 404},                                              // no route
	}
	for i, s := range steps {
		if r := e.do("POST", s.path, body, s.headers); r.Status != s.status {
			t.Fatalf("step %d %s %v: status %d, want %d (body %s)", i, s.path, s.headers, r.Status, s.status, r.Body)
		}
	}
}

func scrapeMetrics(t *testing.T, e *env) map[string]*dto.MetricFamily {
	t.Helper()
	r, err := http.Get(e.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("/metrics: %d", r.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// value returns the value of the series name{labels}; counters, gauges, and a histogram's
// sample count. NaN when absent.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	f := fams[name]
	if f == nil {
		return math.NaN()
	}
next:
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(labels) {
			continue
		}
		for k, v := range labels {
			if got[k] != v {
				continue next
			}
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
	return math.NaN()
}

func TestMetricsAfterKnownTraffic(t *testing.T) {
	e, up := startObservability(t)
	knownTraffic(t, e)
	if n := len(up.requests()); n != 4 {
		t.Fatalf("upstream saw %d requests, want 4 (2 obl allowed, 2 shadowed)", n)
	}
	fams := scrapeMetrics(t, e)
	type L = map[string]string
	want := []struct {
		name   string
		labels L
		v      float64
	}{
		{"hookwall_requests_total", L{"route": "obl", "outcome": "allowed", "code": "200"}, 2},
		{"hookwall_requests_total", L{"route": "obl", "outcome": "duplicate", "code": "200"}, 1},
		{"hookwall_requests_total", L{"route": "obl", "outcome": "filtered", "code": "403"}, 1},
		{"hookwall_requests_total", L{"route": "obl", "outcome": "rate_limited", "code": "429"}, 1},
		{"hookwall_requests_total", L{"route": "obl", "outcome": "denied", "code": "403"}, 1},
		{"hookwall_requests_total", L{"route": "obl", "outcome": "error", "code": "500"}, 2},
		{"hookwall_requests_total", L{"route": "shadowed", "outcome": "allowed", "code": "200"}, 2},
		{"hookwall_requests_total", L{"route": "", "outcome": "no_route", "code": "404"}, 1},
		{"hookwall_request_duration_seconds", L{"route": "obl"}, 8},
		{"hookwall_request_duration_seconds", L{"route": "shadowed"}, 2},
		{"hookwall_policy_duration_seconds", L{"route": "obl"}, 6},
		{"hookwall_filter_duration_seconds", L{"route": "obl", "filter": "guard"}, 8},
		{"hookwall_filter_errors_total", L{"filter": "guard", "kind": "trap"}, 1},
		{"hookwall_upstream_duration_seconds", L{"route": "obl"}, 2},
		{"hookwall_upstream_duration_seconds", L{"route": "shadowed"}, 2},
		{"hookwall_upstream_errors_total", L{"route": "obl"}, 0},
		{"hookwall_rate_limited_total", L{"route": "obl"}, 1},
		{"hookwall_duplicates_total", L{"route": "obl", "state": "delivered"}, 1},
		{"hookwall_duplicates_total", L{"route": "obl", "state": "in_flight"}, 0},
		{"hookwall_shadow_evaluations_total", L{"route": "shadowed", "result": "agree"}, 1},
		{"hookwall_shadow_evaluations_total", L{"route": "shadowed", "result": "disagree"}, 1},
		{"hookwall_state_checks_total", L{"result": "ok"}, 4},
		{"hookwall_state_checks_total", L{"result": "error"}, 0},
		{"hookwall_filter_pool_size", L{"filter": "guard"}, 2},
		{"hookwall_filter_instances_discarded_total", L{"filter": "guard"}, 1},
		{"hookwall_reloads_total", L{"result": "ok"}, 0},
		{"hookwall_reloads_total", L{"result": "error"}, 0},
		{"hookwall_config_last_reload_successful", L{}, 1},
		{"hookwall_revision_info", L{"revision": e.g.Status().Revision}, 1},
	}
	for _, w := range want {
		if got := metricValue(fams, w.name, w.labels); got != w.v {
			t.Errorf("%s%v = %v, want %v", w.name, w.labels, got, w.v)
		}
	}
	for _, name := range []string{"go_goroutines", "go_gc_duration_seconds", "process_cpu_seconds_total", "hookwall_state_keys", "hookwall_decision_log_written_total"} {
		if fams[name] == nil {
			t.Errorf("series %s missing", name)
		}
	}
	// Bounded labels: nothing a client sent (paths, IPs, header values) is a label value.
	for name, f := range fams {
		for _, m := range f.Metric {
			for _, l := range m.Label {
				v := l.GetValue()
				if strings.Contains(v, "/") || strings.Contains(v, "127.0.0.1") || strings.Contains(v, "SECRET") || v == "acme" || v == "d-1" || v == "c-1" {
					if !(name == "go_info" || strings.HasPrefix(name, "go_")) {
						t.Errorf("%s has a request-derived label %s=%q", name, l.GetName(), v)
					}
				}
			}
		}
	}

	// A reload is counted, and the revision series follows it.
	if st, _ := e.adminReload(); st != http.StatusOK {
		t.Fatalf("POST /-/reload: %d", st)
	}
	fams = scrapeMetrics(t, e)
	if got := metricValue(fams, "hookwall_reloads_total", L{"result": "ok"}); got != 1 {
		t.Errorf("reloads ok after POST /-/reload = %v, want 1", got)
	}
	if n := len(fams["hookwall_revision_info"].GetMetric()); n != 1 {
		t.Errorf("%d revision_info series, want exactly 1", n)
	}
	// The decision log counts every record (it flushes within 200ms).
	testutil.WaitFor(t, func() bool {
		return metricValue(scrapeMetrics(t, e), "hookwall_decision_log_written_total", L{}) == 11
	})
}

func TestDecisionLogOutcomesAndMasking(t *testing.T) {
	e, _ := startObservability(t)
	knownTraffic(t, e)
	e.stop() // flushes the log
	raw, err := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"SECRET", "tok-", "session="} {
		if bytes.Contains(raw, []byte(v)) {
			t.Fatalf("decision log leaks %q:\n%s", v, raw)
		}
	}
	type rec struct {
		Path     string   `json:"path"`
		Route    string   `json:"route"`
		Outcome  string   `json:"outcome"`
		Status   int      `json:"status"`
		Reasons  []string `json:"reasons"`
		Error    string   `json:"error"`
		StateErr string   `json:"state_error"`
		Result   *struct {
			Allow bool `json:"allow"`
		} `json:"result"`
		Request struct {
			Method        string            `json:"method"`
			Path          string            `json:"path"`
			Headers       map[string]string `json:"headers"`
			Body          *string           `json:"body"`
			BodyBytes     int               `json:"body_bytes"`
			BodyTruncated bool              `json:"body_truncated"`
		} `json:"request"`
		Filters []struct {
			Name, Outcome, Error string
		} `json:"filters"`
		Shadow *struct {
			Policy string `json:"policy"`
			Allow  bool   `json:"allow"`
			Status int    `json:"status"`
			Agree  bool   `json:"agree"`
		} `json:"shadow"`
		Masked []string       `json:"masked"`
		Labels map[string]any `json:"labels"`
	}
	var recs []rec
	for _, l := range bytes.Split(bytes.TrimSpace(raw), []byte("\n")) {
		var r rec
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, l)
		}
		recs = append(recs, r)
	}
	if len(recs) != 11 {
		t.Fatalf("%d records, want 11:\n%s", len(recs), raw)
	}
	// Every record of a routed request carries the headers (masked) and the body's start; the
	// router's 404 is recorded before the headers are read.
	for i, r := range recs[:10] {
		h := r.Request.Headers
		for _, name := range []string{"Authorization", "Cookie", "X-Hub-Signature-256", "X-Tenant", "X-Internal-Trace"} {
			if h[name] != "***" {
				t.Errorf("record %d (%s): %s = %q, want masked", i, r.Outcome, name, h[name])
			}
		}
		if len(r.Masked) != 5 {
			t.Errorf("record %d: masked %v, want 5 pointers", i, r.Masked)
		}
		if r.Request.Body == nil || *r.Request.Body != `{"event":"push",` || r.Request.BodyBytes != 39 || !r.Request.BodyTruncated {
			t.Errorf("record %d: body capture %+v", i, r.Request)
		}
		if r.Request.Method != "POST" {
			t.Errorf("record %d: method %q", i, r.Request.Method)
		}
	}
	check := func(i int, outcome string, status int, f func(r rec) bool) {
		t.Helper()
		r := recs[i]
		if r.Outcome != outcome || r.Status != status || !f(r) {
			t.Errorf("record %d: %+v, want outcome %s status %d", i, r, outcome, status)
		}
	}
	check(0, "allowed", 200, func(r rec) bool {
		return r.Path == "routes/obl" && r.Result != nil && r.Result.Allow && r.Filters[0].Outcome == "next" && r.Request.Path == "/hooks/obl" && r.Labels["kind"] == "obligations"
	})
	check(1, "duplicate", 200, func(r rec) bool { return r.Result != nil && r.Result.Allow })
	check(2, "filtered", 403, func(r rec) bool {
		return r.Result == nil && len(r.Reasons) == 1 && r.Reasons[0] == "filter guard denied" && r.Filters[0].Outcome == "denied"
	})
	check(3, "allowed", 200, func(r rec) bool { return true })
	check(4, "rate_limited", 429, func(r rec) bool { return r.Result != nil })
	check(5, "denied", 403, func(r rec) bool {
		// allow is true (the filter passed it); the deny rule refuses all the same.
		return len(r.Reasons) == 1 && r.Reasons[0] == "policy says no" && r.Result != nil && r.Result.Allow
	})
	check(6, "error", 500, func(r rec) bool { return strings.Contains(r.Error, "divide by zero") && r.Result == nil })
	check(7, "error", 500, func(r rec) bool {
		return len(r.Filters) == 1 && r.Filters[0].Outcome == "error" && r.Filters[0].Error != "" && r.Error != ""
	})
	check(8, "allowed", 200, func(r rec) bool {
		return r.Shadow != nil && r.Shadow.Agree && r.Shadow.Allow && r.Shadow.Policy == "routes.strict"
	})
	check(9, "allowed", 200, func(r rec) bool {
		return r.Shadow != nil && !r.Shadow.Agree && !r.Shadow.Allow && r.Shadow.Status == 451
	})
	check(10, "no_route", 404, func(r rec) bool { return r.Path == "" && r.Route == "" && r.Shadow == nil })
}

// TestShadowNeverChangesTheAnswer: a shadow that disagrees, or fails, leaves the live answer
// and the upstream's view as they are; the disagreement is logged and counted.
func TestShadowNeverChangesTheAnswer(t *testing.T) {
	e, up := startObservability(t)
	// The same request on a route without a shadow and on the shadowed route reaches the
	// upstream alike.
	for i := range 5 {
		r := e.do("POST", "/hooks/shadowed", []byte("x"), map[string]string{"X-Tenant": "other"})
		if r.Status != 200 || r.Body != "upstream ok" {
			t.Fatalf("request %d: %d %q: the shadow's refusal leaked into the answer", i, r.Status, r.Body)
		}
	}
	if n := len(up.requests()); n != 5 {
		t.Fatalf("upstream saw %d requests, want 5", n)
	}
	// Now a shadow that errors (to_number of a non-number): still forwarded.
	testutil.WriteFile(t, filepath.Join(e.dir, "policies/strict.rego"), "package routes.strict\n\nallow if to_number(input.request.headers[\"x-tenant\"]) > 0\n")
	if _, err := e.g.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if r := e.do("POST", "/hooks/shadowed", []byte("x"), map[string]string{"X-Tenant": "other"}); r.Status != 200 {
		t.Fatalf("a failing shadow changed the answer: %d", r.Status)
	}
	fams := scrapeMetrics(t, e)
	if got := metricValue(fams, "hookwall_shadow_evaluations_total", map[string]string{"route": "shadowed", "result": "disagree"}); got != 5 {
		t.Errorf("disagreements = %v, want 5", got)
	}
	if got := metricValue(fams, "hookwall_shadow_evaluations_total", map[string]string{"route": "shadowed", "result": "error"}); got != 1 {
		t.Errorf("shadow errors = %v, want 1", got)
	}
	e.stop()
	raw, _ := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	last := lines[len(lines)-1]
	if !bytes.Contains(last, []byte(`"shadow":{"policy":"routes.strict","error":`)) || !bytes.Contains(last, []byte(`"agree":false`)) || !bytes.Contains(last, []byte(`"outcome":"allowed"`)) {
		t.Errorf("the failing shadow's record: %s", last)
	}
}

func TestReopenLogAfterRotation(t *testing.T) {
	e, _ := startObservability(t)
	path := filepath.Join(e.dir, "decisions.log")
	e.do("POST", "/hooks/shadowed", nil, map[string]string{"X-Tenant": "acme"})
	testutil.WaitFor(t, func() bool { b, _ := os.ReadFile(path); return bytes.Count(b, []byte("\n")) == 1 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := e.g.ReopenLog(); err != nil {
		t.Fatal(err)
	}
	e.do("POST", "/hooks/shadowed", nil, map[string]string{"X-Tenant": "acme"})
	e.stop()
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if bytes.Count(cur, []byte("\n")) != 1 || bytes.Count(old, []byte("\n")) != 1 {
		t.Fatalf("after rotation: old file %d records, new file %d; want 1 and 1", bytes.Count(old, []byte("\n")), bytes.Count(cur, []byte("\n")))
	}
}

func TestRecentFeedsTheStatusPage(t *testing.T) {
	e, _ := startObservability(t)
	knownTraffic(t, e)
	var doc struct {
		Totals    map[string]uint64 `json:"totals"`
		Log       map[string]any    `json:"log"`
		Rates     []map[string]any  `json:"rates"`
		Filters   []map[string]any  `json:"filters"`
		Decisions []struct {
			Route   string   `json:"route"`
			Outcome string   `json:"outcome"`
			Status  int      `json:"status"`
			Reasons []string `json:"reasons"`
			Request struct {
				Path string `json:"path"`
			} `json:"request"`
			Shadow *struct {
				Agree bool `json:"agree"`
			} `json:"shadow"`
		} `json:"decisions"`
	}
	testutil.WaitFor(t, func() bool {
		r, err := http.Get(e.admin + "/-/recent")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("/-/recent: %v\n%s", err, b)
		}
		return len(doc.Decisions) == 11
	})
	if doc.Totals["allowed"] != 4 || doc.Totals["denied"] != 5 || doc.Totals["failed"] != 2 {
		t.Errorf("totals %v, want allowed 4, denied 5 (filtered, duplicate, rate-limited, denied, no route), failed 2", doc.Totals)
	}
	newest, oldest := doc.Decisions[0], doc.Decisions[10]
	if newest.Outcome != "no_route" || newest.Request.Path != "/nope" || oldest.Outcome != "allowed" || oldest.Route != "obl" {
		t.Errorf("order: newest %+v, oldest %+v", newest, oldest)
	}
	if d := doc.Decisions[1]; d.Shadow == nil || d.Shadow.Agree {
		t.Errorf("the shadow disagreement is not on the page's data: %+v", d)
	}
	if d := doc.Decisions[5]; d.Outcome != "denied" || len(d.Reasons) != 1 || d.Reasons[0] != "policy says no" {
		t.Errorf("reasons: %+v", d)
	}
	if len(doc.Filters) != 1 || doc.Filters[0]["name"] != "guard" || doc.Filters[0]["pool"] != 2.0 {
		t.Errorf("filters %v", doc.Filters)
	}
	if doc.Log["enabled"] != true {
		t.Errorf("log %v", doc.Log)
	}
	// The chart's samples arrive once a second and add up to the traffic.
	testutil.WaitFor(t, func() bool {
		r, err := http.Get(e.admin + "/-/recent")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var d struct {
			Rates []struct{ Allowed, Denied, Failed uint64 } `json:"rates"`
		}
		_ = json.NewDecoder(r.Body).Decode(&d)
		var a, dn, f uint64
		for _, s := range d.Rates {
			a, dn, f = a+s.Allowed, dn+s.Denied, f+s.Failed
		}
		return a == 4 && dn == 5 && f == 2
	})
}

func TestAdminTokenGuardsObservability(t *testing.T) {
	up := startUpstream(t)
	cfg := strings.Replace(strings.ReplaceAll(observabilityConfig, "{{UPSTREAM}}", up.URL()), "[admin]\nlisten = \"127.0.0.1:0\"", "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"adm-token\"", 1)
	wasm, _ := os.ReadFile(filepath.Join("testdata", "denyheader.wasm"))
	e := startEnv(t, cfg, map[string]string{
		"policies/obl.rego": oblPolicy, "policies/live.rego": liveShadowed, "policies/strict.rego": strictShadow,
		"filters/denyheader.wasm": string(wasm),
	}, Options{})
	for _, p := range []string{"/metrics", "/-/recent"} {
		r, err := http.Get(e.admin + p)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 401 {
			t.Errorf("%s without the token: %d, want 401", p, r.StatusCode)
		}
		req, _ := http.NewRequest("GET", e.admin+p, nil)
		req.Header.Set("Authorization", "Bearer adm-token")
		r, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 200 {
			t.Errorf("%s with the token: %d, want 200", p, r.StatusCode)
		}
	}
	// The page itself holds no data: it loads, and asks for the token.
	r, err := http.Get(e.admin + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 || !bytes.Contains(b, []byte(`id="authform"`)) || !strings.Contains(r.Header.Get("Content-Security-Policy"), "script-src 'sha256-") {
		t.Errorf("status page: %d CSP %q", r.StatusCode, r.Header.Get("Content-Security-Policy"))
	}
}

func TestShadowPolicyMustExist(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "gateway.toml"), `
[[route]]
name = "r"
path = "/r"
upstream = "http://127.0.0.1:1"
policy = "routes.live"
shadow_policy = "routes.missing"
`)
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, filepath.Join(dir, "policies", "live.rego"), liveShadowed)
	_, err := Check(t.Context(), filepath.Join(dir, "gateway.toml"), Options{})
	if err == nil || !strings.Contains(err.Error(), `route[1] "r": shadow_policy: policy: package "routes.missing" is not defined`) {
		t.Fatalf("err = %v", err)
	}
}

// Requests counted before the sampler first runs (a gateway under load at start-up) are in
// its first sample: the chart adds up to the traffic.
func TestSamplerCountsRequestsBeforeItStarted(t *testing.T) {
	o := &observability{rates: newRateRing(rateWindow), metrics: metrics.New(metrics.Sources{})}
	for range 3 {
		o.metrics.Request("r", decisionlog.OutcomeAllowed, 200, time.Millisecond)
	}
	o.metrics.Request("r", decisionlog.OutcomeDenied, 403, time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); o.runSampler(ctx) }()
	defer func() { cancel(); <-done }()
	testutil.WaitFor(t, func() bool { return len(o.rates.snapshot()) > 0 })
	var a, d uint64
	for _, s := range o.rates.snapshot() {
		a, d = a+s.Allowed, d+s.Denied
	}
	if a != 3 || d != 1 {
		t.Errorf("samples add up to allowed %d, denied %d; want 3 and 1", a, d)
	}
}
