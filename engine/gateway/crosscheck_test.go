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
	up := startUpstream(t)
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{POLICIES}}", extra).Replace(reloadConfig)
	e := startEnv(t, cfg, map[string]string{"policies/routes/flip.rego": crossCheckPolicy}, Options{})
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

// With on_divergence = "opa" (the default), a compiled decision that topdown answers
// differently is counted, logged with both decisions and the decision id, and moves the
// route to topdown, as /-/status shows; the route then answers as topdown does. A reload
// compiles it again.
func TestCrossCheckMovesDivergentRoute(t *testing.T) {
	e := startCrossCheck(t, "cross_check = 1.0")
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
	e := startCrossCheck(t, "cross_check = 1.0\non_divergence = \"log\"")
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
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{POLICIES}}", "cross_check = 1.0\non_divergence = \"log\"").Replace(reloadConfig) +
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
			for i := range each {
				ok, want := "", 451
				if (w+i)%2 == 0 {
					ok, want = "1", 200
				}
				if got := sendFlip(t, e, ok); got != want {
					errs <- fmt.Sprintf("x-ok %q: %d, want %d", ok, got, want)
					return
				}
			}
			errs <- ""
		}()
	}
	for range workers {
		if msg := <-errs; msg != "" {
			t.Fatal(msg)
		}
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
