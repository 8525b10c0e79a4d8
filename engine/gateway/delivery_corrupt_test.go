package gateway

import (
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// TestQueuedCorruptRowStopsNothing: a stored delivery whose headers do not decode (a
// damaged file, a row changed in the store) is made dead when claimed, never sent, logged
// and counted as a refusal (reason corrupt); the webhooks stored beside it, before and
// after, are delivered.
func TestQueuedCorruptRowStopsNothing(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) }) // keeps the first pending: its retries read the file
	cfg := strings.ReplaceAll(queuedConfig, "max_pending = {{MAX}}", "max_pending = 100")
	cfg = strings.ReplaceAll(cfg, `retry = ["50ms", "50ms", "50ms"]`, `retry = ["100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms", "100ms"]`)
	cfg = strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL())
	e := startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}, Options{})
	post := func(body string) {
		t.Helper()
		if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "")); r.Status != 202 {
			t.Fatalf("status %d", r.Status)
		}
	}
	post(`{"before":1}`)
	testutil.WaitFor(t, func() bool { return len(up.requests()) >= 1 })

	writeStoredRow(t, e, "damaged-1", []byte{5}, []byte(`{"DAMAGED":1}`)) // headers: a length past the end
	refused := func() bool {
		for _, m := range decisionLines(t, e, "dead") {
			if m["delivery_id"] == "damaged-1" {
				return true
			}
		}
		return false
	}
	testutil.WaitFor(t, refused)
	up.setHandler(func(ctx *fasthttp.RequestCtx) {})
	post(`{"after":1}`)
	delivered := func(marker string) bool {
		for _, got := range up.requests() {
			if strings.Contains(string(got.Body), marker) {
				return true
			}
		}
		return false
	}
	testutil.WaitFor(t, func() bool { return delivered(`"before"`) && delivered(`"after"`) })
	if delivered("DAMAGED") {
		t.Fatal("the upstream got the delivery whose stored headers do not decode")
	}
	if m := httpGet(t, e.admin+"/metrics"); !strings.Contains(m, `hookwall_delivery_refused_total{reason="corrupt",route="github"} 1`) {
		t.Fatalf("metrics lack the refusal:\n%s", m)
	}
	if s := e.logBuf.String(); !strings.Contains(s, "delivery refused") || !strings.Contains(s, "delivery_id=damaged-1") || !strings.Contains(s, "reason=corrupt") || strings.Contains(s, "claim failed") {
		t.Fatalf("the log does not name the refused delivery, or says a claim failed:\n%s", s)
	}
}
