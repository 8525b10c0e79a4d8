package gateway

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// A queued route's filters run their request phase, but never their response phase: the
// provider's answer is the gateway's 202, and the upstream's later answer has no one to go
// back to. The redactor's response phase would replace the answer's body by "[redacted]"
// and set X-Redacted; the 202 must carry neither, and the delivery still goes out.
func TestQueuedSkipsResponsePhase(t *testing.T) {
	up := startUpstream(t)
	cfg := strings.ReplaceAll(respPhaseConfig, "{{UPSTREAM}}", up.URL())
	cfg = strings.Replace(cfg, `filters = ["redact-deny"]`, "filters = [\"redact-deny\"]\ndelivery = \"queued\"\nretry = [\"50ms\"]", 1)
	e := startEnv(t, cfg, map[string]string{
		"policies/open.rego":      "package routes.open\n\nallow := true\n",
		"filters/redacttrap.wasm": testGuest(t, "redacttrap.wasm"),
	}, Options{})

	// The same filter on the direct route does run its response phase: the guest works.
	if r := e.do("POST", "/skip/ok", []byte(`{}`), nil); r.Body != "[redacted]" || r.Header.Get("X-Redacted") != "done" {
		t.Fatalf("direct route: %d %q X-Redacted=%q", r.Status, r.Body, r.Header.Get("X-Redacted"))
	}
	r := e.do("POST", "/deny/ok", []byte(`{"n":1}`), nil)
	var ans struct {
		DeliveryID string `json:"delivery_id"`
	}
	if r.Status != 202 || json.Unmarshal([]byte(r.Body), &ans) != nil || ans.DeliveryID == "" || r.Header.Get("X-Redacted") != "" {
		t.Fatalf("queued route: %d %q X-Redacted=%q: the response phase ran on the 202", r.Status, r.Body, r.Header.Get("X-Redacted"))
	}
	testutil.WaitFor(t, func() bool { return len(up.requests()) == 2 })
	if got := up.requests()[1]; got.Header.Get("Hookwall-Delivery-Id") != ans.DeliveryID || string(got.Body) != `{"n":1}` {
		t.Fatalf("delivered %q %v", got.Body, got.Header)
	}
}
