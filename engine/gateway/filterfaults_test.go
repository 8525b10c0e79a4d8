package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestFilterFaultsThroughTheGateway: a filter that traps, runs past its deadline or runs out
// of memory in the request phase, through the real gateway. With on_error = "deny" a trap and
// an out-of-memory answer 500 and a timeout 503, and nothing reaches the upstream; with
// "skip" the request is forwarded as it was before the filter, without the header the guest
// set before it failed. Each failure is counted by kind and its instance discarded.
func TestFilterFaultsThroughTheGateway(t *testing.T) {
	touch, grow := absPath(t, "testdata/touchfail.wasm"), absPath(t, "../filter/testdata/grow.wasm")
	up := startUpstream(t)
	cfg := fmt.Sprintf(quietHead+`
[[filter]]
name = "fail_deny"
module = %[1]q
timeout = "50ms"

[[filter]]
name = "fail_skip"
module = %[1]q
timeout = "50ms"
on_error = "skip"

[[filter]]
name = "grow"
module = %[2]q
memory = "1MiB"

[[route]]
name = "deny"
path = "/deny"
upstream = %[3]q
policy = "routes.open"
filters = ["fail_deny"]

[[route]]
name = "skip"
path = "/skip"
upstream = %[3]q
policy = "routes.open"
filters = ["fail_skip"]

[[route]]
name = "oom"
path = "/oom"
upstream = %[3]q
policy = "routes.open"
filters = ["grow"]
`, touch, grow, up.URL())
	e := startEnv(t, cfg, map[string]string{"policies/open.rego": "package routes.open\n\nallow := true\n"}, Options{Logger: discardLogger()})
	post := func(path string, loop bool) int {
		t.Helper()
		req, _ := http.NewRequest("POST", e.base+path, strings.NewReader("{}"))
		if loop {
			req.Header.Set("X-Loop", "1")
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, c := range []struct {
		path string
		loop bool
		want int
	}{
		{"/deny", false, 500}, // trap
		{"/deny", true, 503},  // timeout
		{"/oom", false, 500},  // out of memory
		{"/skip", false, 200}, // trap, skipped
		{"/skip", true, 200},  // timeout, skipped
	} {
		if got := post(c.path, c.loop); got != c.want {
			t.Errorf("%s (loop %v): status %d, want %d", c.path, c.loop, got, c.want)
		}
	}
	reqs := up.requests()
	if len(reqs) != 2 {
		t.Fatalf("the upstream got %d requests, want the two skipped ones", len(reqs))
	}
	for i, r := range reqs {
		if r.URI != "/skip" || r.Header.Get("X-Touched") != "" {
			t.Errorf("forwarded request %d: %s with X-Touched %q, want /skip as it was before the filter", i, r.URI, r.Header.Get("X-Touched"))
		}
	}
	fams := scrapeMetrics(t, e)
	for _, m := range []struct {
		filter, kind string
	}{{"fail_deny", "trap"}, {"fail_deny", "timeout"}, {"fail_skip", "trap"}, {"fail_skip", "timeout"}, {"grow", "oom"}} {
		if v := metricValue(fams, "hookwall_filter_errors_total", map[string]string{"filter": m.filter, "kind": m.kind}); v != 1 {
			t.Errorf("hookwall_filter_errors_total{filter=%q,kind=%q} = %v, want 1", m.filter, m.kind, v)
		}
	}
	for f, want := range map[string]float64{"fail_deny": 2, "fail_skip": 2, "grow": 1} {
		if v := metricValue(fams, "hookwall_filter_instances_discarded_total", map[string]string{"filter": f}); v != want {
			t.Errorf("hookwall_filter_instances_discarded_total{filter=%q} = %v, want %v", f, v, want)
		}
	}
}

// TestDenialBodyIsTheReasonsAfterAResponseFilter: a route whose filter writes the response
// body in its response phase (a redactor of the upstream's answer), denied by its policy: the
// body is the denial's reasons as JSON, not the filter's body with the denial after it, and
// nothing reaches the upstream.
func TestDenialBodyIsTheReasonsAfterAResponseFilter(t *testing.T) {
	up := startUpstream(t)
	cfg := quietHead + fmt.Sprintf(`
[[filter]]
name = "resp"
module = %q

[[route]]
name = "hook"
path = "/hooks/x"
upstream = %q
policy = "routes.deny"
filters = ["resp"]
`, absPath(t, "../filter/testdata/respwrite.wasm"), up.URL())
	e := startEnv(t, cfg, map[string]string{"policies/deny.rego": "package routes.deny\n\nallow := true\n\ndeny contains \"no\" if input.request.method == \"POST\"\n"}, Options{Logger: discardLogger()})
	r := e.do("POST", "/hooks/x", []byte(`{}`), nil)
	if r.Status != 403 || r.Body != `{"error":"denied","reasons":["no"]}` || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("denied: status %d, Content-Type %q, body %q; want 403, application/json, the reasons", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}

// TestSkippedFilterSaysNothingToThePolicy: a filter with on_error = "skip" that set a label
// and then trapped is skipped whole: the request goes on as it was before it, and the policy
// does not see its label (a policy that trusts a filter's label would otherwise allow what
// the filter never finished checking), on both evaluators.
func TestSkippedFilterSaysNothingToThePolicy(t *testing.T) {
	for _, ev := range []string{"auto", "opa"} {
		t.Run(ev, func(t *testing.T) {
			up := startUpstream(t)
			cfg := strings.Replace(quietHead, "[log]", "evaluator = \""+ev+"\"\n[log]", 1) + fmt.Sprintf(`
[[filter]]
name = "labeltrap"
module = %q
on_error = "skip"

[[route]]
name = "lab"
path = "/hooks/lab"
upstream = %q
policy = "routes.lab"
filters = ["labeltrap"]
`, absPath(t, "../filter/testdata/labeltrap.wasm"), up.URL())
			policy := "package routes.lab\n\ndefault allow := false\n\nallow if input.filters.labeltrap.labels.verified == \"yes\"\n"
			e := startEnv(t, cfg, map[string]string{"policies/lab.rego": policy}, Options{Logger: discardLogger()})
			if r := e.do("POST", "/hooks/lab", []byte(`{}`), nil); r.Status != 403 || len(up.requests()) != 0 {
				t.Errorf("the skipped filter's label reached the policy: status %d, forwarded %d; want 403, 0", r.Status, len(up.requests()))
			}
		})
	}
}

// TestUpstreamHeadersTheGatewayOwnsFailClosed: a policy's upstream_headers naming a header the
// gateway owns (Connection, here computed from the request) or holding a line break is a
// malformed decision: 500, nothing forwarded; a plain one is set.
func TestUpstreamHeadersTheGatewayOwnsFailClosed(t *testing.T) {
	up := startUpstream(t)
	cfg := quietHead + fmt.Sprintf(`
[[route]]
name = "uh"
path = "/hooks/uh"
upstream = %q
policy = "routes.uh"
`, up.URL())
	policy := "package routes.uh\n\nallow := true\n\nupstream_headers := {input.request.headers[\"x-name\"]: input.request.headers[\"x-value\"]}\n"
	e := startEnv(t, cfg, map[string]string{"policies/uh.rego": policy}, Options{Logger: discardLogger()})
	for _, c := range []struct {
		name, value string
		status      int
	}{
		{"X-Tenant", "acme", 200},
		{"Connection", "close", 500},
		{"Upgrade", "h2c", 500},
		{"Host", "evil.example", 500},
	} {
		before := len(up.requests())
		r := e.do("POST", "/hooks/uh", []byte(`{}`), map[string]string{"X-Name": c.name, "X-Value": c.value})
		if forwarded := len(up.requests()) - before; r.Status != c.status || forwarded != map[bool]int{true: 1, false: 0}[c.status == 200] {
			t.Errorf("upstream_headers {%s: %s}: status %d, forwarded %d; want %d", c.name, c.value, r.Status, forwarded, c.status)
		}
	}
	if got := up.requests()[0].Header.Get("X-Tenant"); got != "acme" {
		t.Errorf("the plain header was not set: %q", got)
	}
}
