//go:build !race

package gateway

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// A queued route's delivery target is resolved once per snapshot: the dispatcher asks for
// it at every delivery, and each answer made its retry schedule and decoded its signing
// key again. A reload gives the new snapshot's target.
func TestDeliveryTargetResolvedOncePerSnapshot(t *testing.T) {
	up := startUpstream(t)
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	cfg := strings.ReplaceAll(queuedConfig, `retry = ["50ms", "50ms", "50ms"]`, `retry = ["50ms", "50ms", "50ms"]`+"\n"+`sign = "wh"`)
	cfg = strings.ReplaceAll(cfg, `github = {file = "github.secret"}`, "github = {file = \"github.secret\"}\nwh = {file = \"wh.secret\"}")
	cfg = strings.ReplaceAll(strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL()), "{{MAX}}", "100")
	e := startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret", "wh.secret": secret}, Options{})

	target := func() ([]time.Duration, []byte) {
		t.Helper()
		tg, release, ok := e.g.deliveryTarget("github", 0)
		if !ok {
			t.Fatal("no target for the queued route")
		}
		defer release()
		return tg.Retry, tg.SignKey
	}
	retry, key := target()
	if !slices.Equal(retry, []time.Duration{50 * time.Millisecond, 50 * time.Millisecond, 50 * time.Millisecond}) || len(key) < 16 {
		t.Fatalf("target: retry %v, a %d-byte key", retry, len(key))
	}
	if _, _, ok := e.g.deliveryTarget("direct", 0); ok {
		t.Fatal("a direct route has a delivery target")
	}
	if n := testing.AllocsPerRun(200, func() { target() }); n != 0 {
		t.Errorf("resolving a delivery target allocates %.0f times; want 0 once resolved", n)
	}

	text, err := os.ReadFile(e.path("gateway.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(e.path("gateway.toml"), []byte(strings.ReplaceAll(string(text), `retry = ["50ms", "50ms", "50ms"]`, `retry = ["70ms"]`)), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, out := e.adminReload(); st != 200 {
		t.Fatalf("reload: %d %v", st, out)
	}
	if retry, _ := target(); !slices.Equal(retry, []time.Duration{70 * time.Millisecond}) {
		t.Fatalf("after the reload the target's retry is %v, want [70ms]", retry)
	}
}
