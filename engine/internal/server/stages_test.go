package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/sqlite"
	"github.com/hookwall/hookwall/engine/internal/testutil"
	"github.com/hookwall/hookwall/engine/state/memory"
	"github.com/hookwall/hookwall/engine/watch"
)

// TestStageList pins the request path's order: the gateway's contract is in it (see stages).
func TestStageList(t *testing.T) {
	var got []string
	for _, st := range stages {
		got = append(got, st.name)
	}
	want := []string{
		"peer", "framing", "path", "route", "log", "input", "watch", "capture", "rewrite", "filters",
		"policy", "crosscheck", "shadow", "dryrun", "verdict", "obligations", "queue", "upstream",
	}
	if !slices.Equal(got, want) {
		t.Errorf("stages\n got %q\nwant %q", got, want)
	}
}

// events records, in order, what the request path did with one request: the stages report it
// to the observer (filter:NAME, policy, state, upstream), the watcher (watch) and the queue
// (queue).
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	e.list = append(e.list, s)
	e.mu.Unlock()
}

// take returns the events since the last take.
func (e *events) take() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := strings.Join(e.list, " ")
	e.list = e.list[:0]
	return s
}

func (e *events) Request(string, decisionlog.Outcome, int, time.Duration) {}
func (e *events) Policy(string, time.Duration)                            { e.add("policy") }
func (e *events) Filter(_, f string, _ time.Duration, _ string) {
	e.add("filter:" + f)
}
func (e *events) Upstream(string, time.Duration, bool) { e.add("upstream") }
func (e *events) State(bool)                           { e.add("state") }

// watched is the real watcher, its block checks recorded.
type watched struct {
	*watch.Watcher
	ev *events
}

func (w watched) Blocked(ip string, now time.Time) (int64, bool, bool) {
	w.ev.add("watch")
	return w.Watcher.Blocked(ip, now)
}

// queued is the real delivery dispatcher (not run: what is stored stays), its enqueues
// recorded.
type queued struct {
	*delivery.Dispatcher
	ev *events
}

func (q queued) Enqueue(ctx context.Context, r *delivery.Record) error {
	q.ev.add("queue")
	return q.Dispatcher.Enqueue(ctx, r)
}

const orderPolicy = `package routes.order

allow := true

deny contains "refused by the policy" if input.request.headers["x-deny"]

dedupe := {"key": input.request.headers["x-delivery"], "ttl": "1h"} if input.request.headers["x-delivery"]
`

// TestStagesRunInOrder drives the real server (real wasm filters, the memory state store, the
// watcher, a SQLite delivery store, a loopback upstream) and checks what each kind of request
// reached, in order: a blocked source reaches no filter, a filter's denial no policy, a policy
// denial no state store, a queued request is stored only after its dedupe check, and a dry
// run stops at the decision.
func TestStagesRunInOrder(t *testing.T) {
	ev := &events{}
	up := startUpstream(t)
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "policies", "order.rego"), orderPolicy)
	filters, _ := filepath.Abs("../../../examples/filters")
	cfgText := `
[server]
trusted_proxies = ["127.0.0.1/32"]
[policies]
dir = "policies"
cross_check = 0
[watch]
block = true
min_events = 1
[watch.class.policy]
block = true
[[filter]]
name = "tiny"
module = "` + filepath.Join(filters, "tiny/tiny.wasm") + `"
[[filter]]
name = "events"
module = "` + filepath.Join(filters, "eventallow/eventallow.wasm") + `"
config = '{"allow": ["push"]}'
[[route]]
name = "direct"
path = "/direct"
upstream = "http://` + up + `"
policy = "routes.order"
filters = ["tiny", "events"]
[[route]]
name = "queued"
path = "/queued"
upstream = "http://` + up + `"
policy = "routes.order"
filters = ["tiny", "events"]
delivery = "queued"
`
	store, err := sqlite.Open(sqlite.Options{Path: filepath.Join(dir, "deliveries.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv, addr := startServer(t, filepath.Join(dir, "gateway.toml"), cfgText, func(cfg *config.Config, o *Options) {
		w, err := watch.New(watch.Options{Config: cfg.Watch, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		o.Store, o.Observer, o.Watch = memory.New(memory.Options{}), ev, watched{w, ev}
		o.Queue = queued{delivery.NewDispatcher(delivery.Options{Store: store, Logger: o.Logger}), ev}
	})
	client := &fasthttp.HostClient{Addr: addr}
	// send sends a request from the client source with the event type and headers h, and
	// returns the answer's status and the events it caused.
	send := func(path, source, event string, h ...string) (int, string) {
		t.Helper()
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://gateway" + path)
		req.Header.SetMethod("POST")
		req.Header.Set("X-Forwarded-For", source)
		req.Header.Set("X-GitHub-Event", event)
		for i := 0; i < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		req.SetBodyString(`{"zen":"order"}`)
		if err := client.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode(), ev.take()
	}

	// Each case has a source of its own: any refusal blocks its source (min_events = 1; the
	// policy class blocks too, as configured).
	const direct = "watch filter:tiny filter:events policy state upstream"
	for _, c := range []struct {
		name, path, source, event string
		headers                   []string
		status                    int
		events                    string
	}{
		{"allowed", "/direct", "192.0.2.1", "push", []string{"X-Delivery", "d-1"}, 200, direct},
		{"duplicate", "/direct", "192.0.2.3", "push", []string{"X-Delivery", "d-1"}, 200, "watch filter:tiny filter:events policy state"},
		{"filter denial", "/direct", "192.0.2.4", "issues", []string{"X-Delivery", "d-2"}, 403, "watch filter:tiny filter:events"},
		// The denial takes no dedupe claim: the key is new to the next request.
		{"policy denial", "/direct", "192.0.2.2", "push", []string{"X-Delivery", "d-3", "X-Deny", "1"}, 403, "watch filter:tiny filter:events policy"},
		{"after a policy denial", "/direct", "192.0.2.5", "push", []string{"X-Delivery", "d-3"}, 200, direct},
		// 192.0.2.2's denial raised an anomaly: its source is blocked.
		{"blocked source", "/direct", "192.0.2.2", "push", []string{"X-Delivery", "d-4"}, 429, "watch"},
		{"queued", "/queued", "192.0.2.6", "push", []string{"X-Delivery", "q-1"}, 202, "watch filter:tiny filter:events policy state queue"},
		{"queued duplicate", "/queued", "192.0.2.7", "push", []string{"X-Delivery", "q-1"}, 200, "watch filter:tiny filter:events policy state"},
	} {
		status, got := send(c.path, c.source, c.event, c.headers...)
		if status != c.status || got != c.events {
			t.Errorf("%s: %d after %q, want %d after %q", c.name, status, got, c.status, c.events)
		}
	}

	// A dry run runs the same stages up to the decision: no watcher (the blocked source is
	// judged), no state store, no queue.
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.SetRequestURI("/queued")
	req.Header.SetHost("gateway")
	req.Header.SetMethod("POST")
	req.Header.Set("X-Forwarded-For", "192.0.2.2")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-Delivery", "q-2")
	req.SetBodyString(`{"zen":"order"}`)
	dry, err := srv.Evaluate(req, DryRun{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.take(); dry.Outcome != "allowed" || dry.Dedupe == nil || got != "filter:tiny filter:events policy" {
		t.Errorf("dry run: %s %d %q (dedupe %v) after %q, want allowed after %q", dry.Outcome, dry.Status, dry.Error, dry.Dedupe, got, "filter:tiny filter:events policy")
	}

	stored, err := store.List(context.Background(), delivery.Query{Route: "queued"})
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 {
		t.Errorf("the delivery store holds %d requests of the queued route, want 1 (the duplicate is not stored)", len(stored))
	}
}
