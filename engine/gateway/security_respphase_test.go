package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// respPhaseConfig serves one redactor (the redacttrap test guest) twice: with on_error =
// "deny" under /deny/ and with on_error = "skip" under /skip/.
const respPhaseConfig = `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[log]
decisions = "{{DIR}}/decisions.log"

[[filter]]
name = "redact-deny"
module = "filters/redacttrap.wasm"
on_error = "deny"

[[filter]]
name = "redact-skip"
module = "filters/redacttrap.wasm"
on_error = "skip"

[[route]]
name = "deny"
prefix = "/deny/"
upstream = "{{UPSTREAM}}"
policy = "routes.open"
filters = ["redact-deny"]

[[route]]
name = "skip"
prefix = "/skip/"
upstream = "{{UPSTREAM}}"
policy = "routes.open"
filters = ["redact-skip"]
`

// upstreamSecret is what the redactor must never let through unredacted.
const upstreamSecret = "ssn=078-05-1120"

// TestResponsePhaseFailureHonoursOnError: a response-phase filter that traps half-way (it
// has marked the response and not yet redacted it) must not let the upstream's answer
// through. With on_error = "deny" the client gets the gateway's 502 and nothing of the
// upstream's answer or of the guest's half-done changes; with "skip" the answer goes on as
// it was before the filter (the operator chose availability over the filter).
func TestResponsePhaseFailureHonoursOnError(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		if strings.HasSuffix(string(ctx.Path()), "/trap") {
			ctx.Response.Header.Set("X-Trap", "1")
		}
		ctx.SetBodyString(upstreamSecret)
	})
	cfg := strings.ReplaceAll(respPhaseConfig, "{{UPSTREAM}}", up.URL())
	e := startEnv(t, cfg, map[string]string{
		"policies/open.rego":      "package routes.open\n\nallow := true\n",
		"filters/redacttrap.wasm": testGuest(t, "redacttrap.wasm"),
	}, Options{})

	cases := []struct {
		path       string
		status     int
		body       string // exact
		redacted   string // the x-redacted header the client sees
		logOutcome string // the filter's outcome in the decision log
	}{
		{"/deny/ok", 200, "[redacted]", "done", "next"},
		{"/deny/trap", 502, `{"error":"filter error"}`, "", "error"},
		{"/skip/ok", 200, "[redacted]", "done", "next"},
		{"/skip/trap", 200, upstreamSecret, "", "skipped"},
	}
	for _, c := range cases {
		t.Run(strings.TrimPrefix(c.path, "/"), func(t *testing.T) {
			before := len(up.requests())
			r := e.do("POST", c.path, []byte(`{}`), nil)
			if r.Status != c.status || r.Body != c.body {
				t.Fatalf("%s: %d %q, want %d %q", c.path, r.Status, r.Body, c.status, c.body)
			}
			if got := r.Header.Get("X-Redacted"); got != c.redacted {
				t.Errorf("%s: X-Redacted %q, want %q (a failed guest's half-done change must not leave)", c.path, got, c.redacted)
			}
			if r.Header.Get("X-Trap") != "" && c.status == 502 {
				t.Errorf("%s: the upstream's header reached the client through the 502", c.path)
			}
			if len(up.requests()) != before+1 {
				t.Errorf("%s: the upstream got %d requests, want 1 (the failure is in the response phase)", c.path, len(up.requests())-before)
			}
		})
	}

	// The decision log tells what happened to each.
	e.stop()
	lines := strings.Split(strings.TrimSpace(secReadFile(t, e.dir+"/decisions.log")), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("%d decision-log lines, want %d", len(lines), len(cases))
	}
	for i, line := range lines {
		var rec struct {
			Outcome string `json:"outcome"`
			Status  int    `json:"status"`
			Filters []struct {
				Name, Outcome, Error string
			} `json:"filters"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		c := cases[i]
		if rec.Status != c.status || len(rec.Filters) != 1 || rec.Filters[0].Outcome != c.logOutcome {
			t.Errorf("%s: logged status %d filters %+v, want status %d and filter outcome %q", c.path, rec.Status, rec.Filters, c.status, c.logOutcome)
		}
		if c.status == 502 && rec.Outcome != "error" {
			t.Errorf("%s: logged outcome %q, want error", c.path, rec.Outcome)
		}
		if c.logOutcome != "next" && !strings.Contains(rec.Filters[0].Error, "trap") {
			t.Errorf("%s: logged filter error %q, want the trap", c.path, rec.Filters[0].Error)
		}
	}
}
