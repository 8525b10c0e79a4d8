package gateway

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// TestStartWarnsOfHeldDeliveries: webhooks a queued route answered 202 for and could not
// deliver yet stay in the store when the route is made direct; a gateway that starts with no
// queued route opens no dispatcher, so it says the store still holds them, which route's,
// and that they are held, never sent to the direct route's upstream.
func TestStartWarnsOfHeldDeliveries(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) })
	cfg := strings.ReplaceAll(queuedConfig, "max_pending = {{MAX}}", "max_pending = 100")
	cfg = strings.ReplaceAll(cfg, `retry = ["50ms", "50ms", "50ms"]`, `retry = ["1h"]`)
	cfg = strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL())
	files := map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}
	e := startEnv(t, cfg, files, Options{})
	body := `{"held":1}`
	if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "")); r.Status != 202 {
		t.Fatalf("status %d", r.Status)
	}
	testutil.WaitFor(t, func() bool { return len(up.requests()) >= 1 }) // answered 503: pending for an hour
	e.stop()

	direct := strings.Replace(cfg, "delivery = \"queued\"\nretry = [\"1h\"]\n", "", 1)
	if direct == cfg {
		t.Fatal("the route stayed queued")
	}
	for _, f := range []string{"hookwall-deliveries.db", "hookwall-deliveries.db-wal"} {
		if b, err := os.ReadFile(filepath.Join(e.dir, f)); err == nil {
			files[f] = string(b)
		}
	}
	e2 := startEnv(t, direct, files, Options{})
	log := e2.logBuf.String()
	if !strings.Contains(log, "the store holds pending deliveries and no route is queued") || !strings.Contains(log, "pending=1") || !strings.Contains(log, "routes=[github]") {
		t.Fatalf("a gateway with no queued route started beside a held delivery and said nothing of it:\n%s", log)
	}
}
