package gateway

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
)

// A shadow policy whose labels hold the whole input (labels := {"in": input}) runs beside
// the live policy under concurrency: every live answer stays the live policy's, and every
// shadow evaluation completes (agrees or disagrees) without an error.
func TestShadowInputValueUnderConcurrency(t *testing.T) {
	up := startUpstream(t)
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{POLICIES}}", "").Replace(reloadConfig) + "shadow_policy = \"routes.loop\"\n"
	e := startEnv(t, cfg, map[string]string{
		"policies/routes/flip.rego": crossCheckPolicy,
		"policies/routes/loop.rego": "package routes.loop\n\nallow := true\n\nlabels := {\"in\": input, \"n\": count(input.request.headers)}\n",
	}, Options{})
	const workers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan string, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				ok, want := "", 451
				if (w+i)%2 == 0 {
					ok, want = "1", 200
				}
				r := e.do("POST", "/hooks/flip", []byte(fmt.Sprintf(`{"n":%d}`, i)), map[string]string{"X-Ok": ok, "X-Pad": strings.Repeat("p", i)})
				if r.Status != want {
					errs <- fmt.Sprintf("worker %d request %d: %d, want %d", w, i, r.Status, want)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	fams := scrapeMetrics(t, e)
	count := func(result string) float64 {
		v := metricValue(fams, "hookwall_shadow_evaluations_total", map[string]string{"route": "flip", "result": result})
		if math.IsNaN(v) {
			return 0
		}
		return v
	}
	agree, disagree, failed := count("agree"), count("disagree"), count("error")
	if agree+disagree != workers*each || failed > 0 {
		t.Errorf("shadow evaluations: %v agree, %v disagree, %v errors; want %d without error", agree, disagree, failed, workers*each)
	}
}
