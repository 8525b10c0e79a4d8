package gateway

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// crossCheckPolicy denies unless x-ok is "1"; brokenCompiled is the same package compiled
// wrongly (it allows everything): the test-only hook makes it the route's compiled
// evaluator while topdown keeps crossCheckPolicy.
const (
	crossCheckPolicy = "package routes.flip\n\nallow if input.request.headers[\"x-ok\"] == \"1\"\n\nstatus := 451\n"
	brokenCompiled   = "package routes.flip\n\nallow := true\n\nstatus := 451\n"
)

// startCrossCheck starts a gateway with policies settings extra and breaks the compiled
// evaluator of its route through the test-only hook.
func startCrossCheck(t *testing.T, extra string) *env {
	t.Helper()
	return startCrossCheckOf(t, extra, crossCheckPolicy)
}

// startCrossCheckOf is startCrossCheck with topdown evaluating policy instead.
func startCrossCheckOf(t *testing.T, extra, policy string) *env {
	t.Helper()
	up := startUpstream(t)
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{POLICIES}}", extra).Replace(reloadConfig)
	e := startEnv(t, cfg, map[string]string{"policies/routes/flip.rego": policy}, Options{})
	// Acquiring and releasing the snapshot orders the replacement before the requests,
	// which acquire it too.
	snap := e.g.snaps.Acquire()
	err := snap.Routes[0].Query.ReplaceCompiledForTest(context.Background(), map[string]string{"broken.rego": brokenCompiled})
	snap.Release()
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func sendFlip(t *testing.T, e *env, ok string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", e.base+"/hooks/flip", strings.NewReader("{}"))
	if ok != "" {
		req.Header.Set("X-Ok", ok)
	}
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode
}

func divergences(t *testing.T, e *env) float64 {
	v := metricValue(scrapeMetrics(t, e), "hookwall_evaluator_divergence_total", map[string]string{"route": "flip"})
	if math.IsNaN(v) {
		return 0
	}
	return v
}

// A divergence where topdown failed is logged with topdown's error, whose quoted strings
// (a builtin quotes its operand, here a request header's value) are replaced, as they are
// when a request's own evaluation fails.
func TestCrossCheckLogRedactsTheError(t *testing.T) {
	const secret = "s3cr3t-header-value-42"
	e := startCrossCheckOf(t, "cross_check = 1.0\ncross_check_max = 20",
		"package routes.flip\n\nallow if time.parse_rfc3339_ns(input.request.headers[\"x-when\"]) > 0\n\nstatus := 451\n")
	req, _ := http.NewRequest("POST", e.base+"/hooks/flip", strings.NewReader("{}"))
	req.Header.Set("X-When", secret)
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("status %d, want the broken compiled evaluator's 200", r.StatusCode)
	}
	testutil.WaitUntil(t, 5*time.Second, "no divergence was logged", func() bool {
		return strings.Contains(e.logBuf.String(), "compiled evaluator diverged from topdown")
	})
	logs := e.logBuf.String()
	if !strings.Contains(logs, "topdown=\"error: ") || !strings.Contains(logs, "time.parse_rfc3339_ns") {
		t.Errorf("the divergence does not name topdown's error:\n%s", logs)
	}
	if strings.Contains(logs, secret) {
		t.Errorf("the process log holds the header's value:\n%s", logs)
	}
}

// With on_divergence = "opa" (the default), a compiled decision that topdown answers
// differently is counted, logged with both decisions and the decision id, and moves the
// route to topdown, as /-/status shows; the route then answers as topdown does. A reload
// compiles it again.
func TestCrossCheckMovesDivergentRoute(t *testing.T) {
	e := startCrossCheck(t, "cross_check = 1.0\ncross_check_max = 20") // under a ceiling: both requests fit in the bucket
	if got := sendFlip(t, e, "1"); got != 200 {
		t.Fatalf("x-ok 1: %d, want 200 (both evaluators allow)", got)
	}
	if got := sendFlip(t, e, ""); got != 200 {
		t.Fatalf("no x-ok: %d, want the broken compiled evaluator's 200\n%s", got, e.logBuf.String())
	}
	testutil.WaitUntil(t, 5*time.Second, "the route did not move to topdown", func() bool {
		return e.adminStatus().Routes[0].Evaluator == "opa"
	})
	rs := e.adminStatus().Routes[0]
	if !strings.Contains(rs.EvaluatorReason, "diverged from topdown on decision") {
		t.Errorf("/-/status reason %q", rs.EvaluatorReason)
	}
	if n := divergences(t, e); n != 1 {
		t.Errorf("hookwall_evaluator_divergence_total{route=\"flip\"} = %v, want 1", n)
	}
	logs := e.logBuf.String()
	if !strings.Contains(logs, "compiled evaluator diverged from topdown") || !strings.Contains(logs, "decision_id=") ||
		!strings.Contains(logs, "compiled=\"allow=true") || !strings.Contains(logs, "topdown=\"allow=false") {
		t.Errorf("the divergence was not logged with both decisions and the id:\n%s", logs)
	}
	if got := sendFlip(t, e, ""); got != 451 {
		t.Errorf("after the move: %d, want topdown's 451", got)
	}
	if got := sendFlip(t, e, "1"); got != 200 {
		t.Errorf("after the move, x-ok 1: %d, want 200", got)
	}
	if _, err := e.g.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ev := e.adminStatus().Routes[0].Evaluator; ev != "compiled" {
		t.Errorf("after a reload the route is evaluated by %s, want compiled again", ev)
	}
}

// With on_divergence = "log" the difference is counted and logged, and the route stays
// with the compiled evaluator; with cross_check = 0 nothing is checked.
func TestCrossCheckLogOnlyAndOff(t *testing.T) {
	e := startCrossCheck(t, "cross_check = 1.0\non_divergence = \"log\"\ncross_check_max = 0") // no ceiling: all three are checked
	for range 3 {
		if got := sendFlip(t, e, ""); got != 200 {
			t.Fatalf("no x-ok: %d, want the broken compiled evaluator's 200", got)
		}
	}
	testutil.WaitUntil(t, 5*time.Second, "the divergences were not counted", func() bool { return divergences(t, e) == 3 })
	if ev := e.adminStatus().Routes[0].Evaluator; ev != "compiled" {
		t.Errorf("on_divergence = \"log\" moved the route to %s", ev)
	}

	off := startCrossCheck(t, "cross_check = 0")
	for range 20 {
		if got := sendFlip(t, off, ""); got != 200 {
			t.Fatalf("no x-ok: %d, want the broken compiled evaluator's 200", got)
		}
	}
	time.Sleep(100 * time.Millisecond) // a check would have been queued by now
	if n := divergences(t, off); n != 0 || off.adminStatus().Routes[0].Evaluator != "compiled" {
		t.Errorf("cross_check = 0: %v divergences, evaluator %s", n, off.adminStatus().Routes[0].Evaluator)
	}
}

// Every request checked, eight at a time on pooled exchanges whose buffers the next request
// reuses: topdown, building each request's input on the worker from what the request handed
// over, answers every one as the compiled evaluator did (deny without x-ok, allow with it).
func TestCrossCheckAgreesUnderReuse(t *testing.T) {
	up := startUpstream(t)
	// A second route, "flop", whose compiled evaluator is broken before any request: its one
	// request, sent last, diverges, and since one worker takes the jobs in order, once that
	// divergence is counted every request before it was checked (or dropped by a full
	// queue, never half checked).
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{POLICIES}}", "cross_check = 1.0\non_divergence = \"log\"\ncross_check_max = 0").Replace(reloadConfig) +
		"\n[[route]]\nname = \"flop\"\npath = \"/hooks/flop\"\nupstream = \"" + up.URL() + "\"\npolicy = \"routes.flop\"\n"
	flop := strings.Replace(crossCheckPolicy, "routes.flip", "routes.flop", 1)
	e := startEnv(t, cfg, map[string]string{"policies/routes/flip.rego": crossCheckPolicy, "policies/routes/flop.rego": flop}, Options{})
	snap := e.g.snaps.Acquire()
	err := snap.Routes[1].Query.ReplaceCompiledForTest(context.Background(),
		map[string]string{"broken.rego": strings.Replace(brokenCompiled, "routes.flip", "routes.flop", 1)})
	snap.Release()
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 8, 40
	errs := make(chan string, workers)
	for w := range workers {
		go func() {
			msg := ""
			defer func() { errs <- msg }() // also after a t.Fatal in sendFlip, which ends only this goroutine
			for i := range each {
				ok, want := "", 451
				if (w+i)%2 == 0 {
					ok, want = "1", 200
				}
				if got := sendFlip(t, e, ok); got != want {
					msg = fmt.Sprintf("x-ok %q: %d, want %d", ok, got, want)
					return
				}
			}
		}()
	}
	for range workers {
		if msg := <-errs; msg != "" {
			t.Fatal(msg)
		}
	}
	if t.Failed() { // a request failed in its goroutine
		t.FailNow()
	}
	r, err := client.Post(e.base+"/hooks/flop", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("flop: %d, want the broken compiled evaluator's 200", r.StatusCode)
	}
	testutil.WaitUntil(t, 10*time.Second, "the last, divergent, decision was not counted", func() bool {
		return metricValue(scrapeMetrics(t, e), "hookwall_evaluator_divergence_total", map[string]string{"route": "flop"}) == 1
	})
	if n := divergences(t, e); n != 0 {
		t.Fatalf("%v divergences between topdown and the compiled evaluator that agree:\n%s", n, e.logBuf.String())
	}
}

// ceilingConfig is a gateway that cross-checks every decision of one route, whose policy
// verifies a GitHub signature, with {{CEILING}} in [policies].
const ceilingConfig = `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[policies]
dir = "policies"
cross_check = 1.0
on_divergence = "log"
{{CEILING}}

[log]
decisions = "off"

[secrets]
github = {file = "github.secret"}

[[route]]
name = "signed"
path = "/hooks/signed"
upstream = "{{UPSTREAM}}"
policy = "routes.signed"
`

// signedPolicy allows a delivery whose GitHub signature verifies; the route's compiled
// evaluator is replaced by one that denies everything, so that every signed delivery the
// cross-check evaluates again is a divergence, counted: the divergence counter counts the
// checks.
const signedPolicy = "package routes.signed\n\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"github\"}).valid\n"

// floodSigned starts a gateway with ceiling in [policies], sends it n signed deliveries from 8
// clients, each pausing pause between its requests, and returns how many were checked (the
// divergences, once their count has settled) and how long the sending took. Every sampled
// delivery must be accounted for in hookwall_cross_checks_total, whose checked must be the
// divergences; skipped is returned.
func floodSigned(t *testing.T, ceiling string, n int, pause time.Duration) (checked, skipped int, took time.Duration) {
	t.Helper()
	up := startUpstream(t)
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{CEILING}}", ceiling).Replace(ceilingConfig)
	e := startEnv(t, cfg, map[string]string{"policies/routes/signed.rego": signedPolicy, "github.secret": "ceiling-secret"}, Options{})
	snap := e.g.snaps.Acquire()
	err := snap.Routes[0].Query.ReplaceCompiledForTest(context.Background(), map[string]string{"denyall.rego": "package routes.signed\n\nallow := false\n"})
	snap.Release()
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"ref":"refs/heads/main"}`)
	headers := func() map[string]string {
		return map[string]string{"X-Hub-Signature-256": githubSig("ceiling-secret", body), "X-GitHub-Event": "push",
			"X-GitHub-Delivery": nextDelivery(), "Content-Type": "application/json"}
	}
	const senders = 8
	errs := make(chan string, senders)
	start := time.Now()
	for w := range senders {
		go func() {
			msg := ""
			defer func() { errs <- msg }() // also after a t.Fatal in e.do, which ends only this goroutine
			for i := w; i < n; i += senders {
				if r := e.do("POST", "/hooks/signed", body, headers()); r.Status != 403 {
					msg = fmt.Sprintf("status %d, want the broken compiled evaluator's 403", r.Status)
					return
				}
				time.Sleep(pause)
			}
		}()
	}
	for range senders {
		if msg := <-errs; msg != "" {
			t.Fatal(msg)
		}
	}
	if t.Failed() { // a request failed in its goroutine
		t.FailNow()
	}
	took = time.Since(start)
	// The worker takes the queued checks one at a time: the count is final once it has
	// stayed the same for a while.
	last, still := -1.0, 0
	testutil.WaitUntil(t, 20*time.Second, "the divergence count did not settle", func() bool {
		v := metricValue(scrapeMetrics(t, e), "hookwall_evaluator_divergence_total", map[string]string{"route": "signed"})
		if math.IsNaN(v) {
			v = 0
		}
		if v == last {
			still++
		} else {
			last, still = v, 0
		}
		if still < 5 {
			time.Sleep(50 * time.Millisecond)
		}
		return still >= 5
	})
	fams := scrapeMetrics(t, e)
	count := func(result string) int {
		v := metricValue(fams, "hookwall_cross_checks_total", map[string]string{"result": result})
		if math.IsNaN(v) {
			t.Fatalf("hookwall_cross_checks_total{result=%q} is not exposed", result)
		}
		return int(v)
	}
	c, d, sk := count("checked"), count("dropped"), count("skipped")
	if c != int(last) || c+d+sk != n {
		t.Errorf("hookwall_cross_checks_total: checked %d, dropped %d, skipped %d; want %d checked (the divergences) and %d in all", c, d, sk, int(last), n)
	}
	return int(last), sk, took
}

// TestCrossCheckCeiling: with every decision sampled (cross_check = 1) and a ceiling of 20
// checks a second, 400 signed deliveries sent by eight clients over about a second are
// checked at most 20 a second plus the bucket's two (a tenth of a second's); the rest are
// skipped, and counted so in hookwall_cross_checks_total, and the checks that ran still catch
// the divergence. With the key left out, the default ceiling (50 a second, a bucket of
// five) bounds them the same way. Without a ceiling
// (cross_check_max = 0) the same deliveries are checked far beyond that.
func TestCrossCheckCeiling(t *testing.T) {
	const n = 400
	pause := 20 * time.Millisecond // 50 requests a client: about a second
	// limit is what a ceiling of perSecond allows over took: perSecond a second plus the
	// bucket (a tenth of a second's, at least one), and a token accrued over the rounding.
	limit := func(perSecond int, took time.Duration) (checks, burst int) {
		burst = max(1, perSecond/10)
		return int(float64(perSecond)*took.Seconds()) + burst + 1, burst
	}
	// bounded floods the gateway configured with ceiling (in [policies]) and holds the
	// checks to the limit of perSecond.
	bounded := func(ceiling string, perSecond int) {
		t.Helper()
		checked, skipped, took := floodSigned(t, ceiling, n, pause)
		bound, burst := limit(perSecond, took)
		t.Logf("ceiling %d/s (%q): %d of %d checked, %d skipped in %v (bound %d)", perSecond, ceiling, checked, n, skipped, took, bound)
		if checked > bound || skipped < n-bound {
			t.Errorf("%d of %d deliveries in %v were checked (%d skipped) under a ceiling of %d a second, want at most %d (at least %d skipped)", checked, n, took, skipped, perSecond, bound, n-bound)
		}
		// The bucket refills while the deliveries come: more than its first tokens are
		// checked, and each check still catches the divergence.
		if checked <= burst {
			t.Errorf("%d deliveries checked in %v under a ceiling of %d a second: the bucket did not refill", checked, took, perSecond)
		}
	}
	bounded("cross_check_max = 20", 20)
	bounded("", 50) // the key left out: the default ceiling

	unbounded, skipped, took := floodSigned(t, "cross_check_max = 0", n, pause)
	t.Logf("no ceiling: %d of %d checked, %d skipped in %v", unbounded, n, skipped, took)
	if over, _ := limit(20, took); unbounded <= over || skipped != 0 {
		t.Errorf("without a ceiling %d of %d deliveries in %v were checked and %d skipped, want more than %d checked and none skipped", unbounded, n, took, skipped, over)
	}
}
