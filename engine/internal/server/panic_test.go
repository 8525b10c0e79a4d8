package server

import (
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/internal/testutil"
	"github.com/hookwall/hookwall/engine/state/memory"
)

// panicky is the stages' observer (events) but for the call of stage at, which panics while
// armed: a fault after the dedupe key was claimed and before it was settled, in the stage
// that forwards ("upstream") or right after the store claimed the key ("obligations").
type panicky struct {
	events
	at    string
	armed atomic.Bool
}

func (p *panicky) Upstream(string, time.Duration, bool) { p.fault("upstream") }
func (p *panicky) State(bool)                           { p.fault("obligations") }

func (p *panicky) fault(stage string) {
	if p.at == stage && p.armed.Load() {
		panic("injected fault")
	}
}

// TestPanicAnswers500AndReleasesTheKey: a panic in a request, through the real listener,
// answers 500, is logged with its stage and stack, leaves the process serving, and releases
// the dedupe key the request had claimed, so that the provider's retry is forwarded instead
// of getting 409 until the claim expires.
func TestPanicAnswers500AndReleasesTheKey(t *testing.T) {
	for _, at := range []string{"upstream", "obligations"} {
		t.Run(at, func(t *testing.T) { panicReleasesTheKey(t, at) })
	}
}

func panicReleasesTheKey(t *testing.T, at string) {
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "policies", "order.rego"), orderPolicy)
	var forwarded atomic.Int32
	up := startUpstreamHandler(t, func(c *fasthttp.RequestCtx) { forwarded.Add(1); c.SetBodyString("ok") })
	logs := &testutil.Buffer{}
	obs := &panicky{at: at}
	obs.armed.Store(true)
	_, addr := startServer(t, filepath.Join(dir, "gateway.toml"), `
[policies]
dir = "policies"
cross_check = 0
[[route]]
name = "order"
path = "/hooks/order"
upstream = "http://`+up+`"
policy = "routes.order"
`, func(_ *config.Config, o *Options) {
		o.Store, o.Observer = memory.New(memory.Options{}), obs
		o.Logger = slog.New(slog.NewTextHandler(logs, nil))
	})
	send := func() (status int, body, duplicate string) {
		t.Helper()
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + addr + "/hooks/order")
		req.Header.SetMethod("POST")
		req.Header.Set("X-Delivery", "d-1")
		req.SetBodyString("{}")
		if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode(), string(resp.Body()), string(resp.Header.Peek("Hookwall-Duplicate"))
	}
	if st, body, _ := send(); st != 500 || strings.Contains(body, "injected") {
		t.Fatalf("a panicking request: %d %q, want 500 without the panic's text", st, body)
	}
	l := logs.String()
	if !strings.Contains(l, `msg="panic in request"`) || !strings.Contains(l, "stage="+at) || !strings.Contains(l, "injected fault") || !strings.Contains(l, "goroutine ") {
		t.Errorf("the panic was not logged with its stage and stack:\n%s", l)
	}
	obs.armed.Store(false)
	if st, _, dup := send(); st != 200 || dup != "" {
		t.Errorf("the retry of the same delivery: %d (duplicate %q), want 200 forwarded (its key released, not held in flight)", st, dup)
	}
	if st, _, dup := send(); st != 200 || dup != "true" {
		t.Errorf("a third send: %d (duplicate %q), want the duplicate's 200", st, dup)
	}
	// The panicking request reached the upstream only when it panicked there.
	if want := map[string]int32{"upstream": 2, "obligations": 1}[at]; forwarded.Load() != want {
		t.Errorf("the upstream got %d requests, want %d (the retry once, the panicking one if it panicked there; the duplicate not)", forwarded.Load(), want)
	}
}
