package server

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/sqlite"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// seenAtEnqueue is the real dispatcher; it records the gauge of arrivals as each enqueue
// is submitted.
type seenAtEnqueue struct {
	*delivery.Dispatcher
	seen atomic.Int64
}

func (q *seenAtEnqueue) Enqueue(ctx context.Context, r *delivery.Record) error {
	q.seen.Store(q.Arrivals().Coming())
	return q.Dispatcher.Enqueue(ctx, r)
}

// A queued request is counted among the arrivals until it submits its enqueue, not while it
// waits for the commit: the writer, which reads the gauge, would otherwise wait for the
// very write it holds.
func TestQueuedRequestArrivesAtItsEnqueue(t *testing.T) {
	up := startUpstream(t)
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "policies", "order.rego"), orderPolicy)
	cfgText := `
[policies]
dir = "policies"
cross_check = 0
[[route]]
name = "queued"
path = "/queued"
upstream = "http://` + up + `"
policy = "routes.order"
delivery = "queued"
`
	arrivals := &delivery.Arrivals{}
	store, err := sqlite.Open(sqlite.Options{Path: filepath.Join(dir, "deliveries.db"), Arrivals: arrivals})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	q := &seenAtEnqueue{Dispatcher: delivery.NewDispatcher(delivery.Options{Store: store, Arrivals: arrivals})}
	q.seen.Store(-1)
	_, addr := startServer(t, filepath.Join(dir, "gateway.toml"), cfgText, func(_ *config.Config, o *Options) { o.Queue = q })
	client := &fasthttp.HostClient{Addr: addr}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://gateway/queued")
	req.Header.SetMethod("POST")
	req.SetBodyString(`{"zen":"arrive"}`)
	if err := client.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != fasthttp.StatusAccepted {
		t.Fatalf("status %d %s, want 202", resp.StatusCode(), resp.Body())
	}
	if got := q.seen.Load(); got != 0 {
		t.Fatalf("%d arrivals counted when the request submitted its enqueue, want 0", got)
	}
	if got := arrivals.Coming(); got != 0 {
		t.Fatalf("%d arrivals counted after the answer, want 0", got)
	}
}
