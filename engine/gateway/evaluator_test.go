package gateway

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// Two routes decide alike, one in the compiled fast path's subset of Rego and one outside
// it (`every`): both serve the same answers, /-/status names each route's evaluator
// and why the second is not compiled, and [policies] evaluator = "opa" moves both to topdown
// on reload.
func TestEvaluatorPerRoute(t *testing.T) {
	files := map[string]string{
		"policies/routes/fast.rego": "package routes.fast\n\nallow if input.request.headers[\"x-ok\"] == \"1\"\n\nstatus := 451\n",
		"policies/routes/slow.rego": "package routes.slow\n\nallow if every v in [input.request.headers[\"x-ok\"]] { v == \"1\" }\n\nstatus := 451\n",
	}
	extra := "\n[[route]]\nname = \"fast\"\npath = \"/hooks/fast\"\nupstream = \"{{U}}\"\npolicy = \"routes.fast\"\n" +
		"\n[[route]]\nname = \"slow\"\npath = \"/hooks/slow\"\nupstream = \"{{U}}\"\npolicy = \"routes.slow\"\n"
	up := startUpstream(t)
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{POLICIES}}", "").Replace(reloadConfig + strings.ReplaceAll(extra, "{{U}}", up.URL()))
	files["policies/routes/flip.rego"] = flipAllow
	e := startEnv(t, cfg, files, Options{})

	send := func(path, ok string) int {
		req, _ := http.NewRequest("POST", e.base+path, nil)
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
	for _, path := range []string{"/hooks/fast", "/hooks/slow"} {
		if a, d := send(path, "1"), send(path, "2"); a != 200 || d != 451 {
			t.Errorf("%s: allowed %d, denied %d; want 200 and 451", path, a, d)
		}
	}
	evaluators := func() map[string]routeStatus {
		out := map[string]routeStatus{}
		for _, r := range e.adminStatus().Routes {
			out[r.Name] = r
		}
		return out
	}
	got := evaluators()
	if got["fast"].Evaluator != "compiled" || got["slow"].Evaluator != "opa" || !strings.Contains(got["slow"].EvaluatorReason, "slow.rego:3") {
		t.Fatalf("/-/status evaluators: fast %+v, slow %+v", got["fast"], got["slow"])
	}

	raw, err := os.ReadFile(e.path("gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	testutil.ReplaceFile(t, e.path("gateway.toml"), strings.Replace(string(raw), "dir = \"policies\"", "dir = \"policies\"\nevaluator = \"opa\"", 1))
	testutil.WaitUntil(t, 2*time.Second, "evaluator = \"opa\" did not apply", func() bool { return evaluators()["fast"].Evaluator == "opa" })
	if a, d := send("/hooks/fast", "1"), send("/hooks/fast", "2"); a != 200 || d != 451 {
		t.Errorf("topdown: allowed %d, denied %d; want 200 and 451", a, d)
	}
}
