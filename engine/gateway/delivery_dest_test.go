package gateway

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// destRetry is a schedule long enough that a failing destination's delivery stays pending
// for the whole test: 60 retries 100ms apart.
var destRetry = strings.TrimSuffix(strings.Repeat(`"100ms", `, 60), ", ")

// destConfig is queuedConfig with the github route fanned out to dests, its store a
// SQLite file in the test's directory.
func destConfig(upstream string, dests ...string) string {
	cfg := strings.ReplaceAll(queuedConfig, `retry = ["50ms", "50ms", "50ms"]`,
		`retry = [`+destRetry+`]`+"\n"+`destinations = ["`+strings.Join(dests, `", "`)+`"]`)
	cfg = strings.ReplaceAll(cfg, "max_pending = {{MAX}}", "max_pending = 100\npath = \"{{DIR}}/deliveries.db\"")
	return strings.ReplaceAll(cfg, "{{UPSTREAM}}", upstream)
}

// reloadDests rewrites gateway.toml with the github route's destinations dests and reloads.
func reloadDests(t *testing.T, e *env, upstream string, dests ...string) {
	t.Helper()
	cfg := strings.ReplaceAll(destConfig(upstream, dests...), "{{DIR}}", e.dir)
	if err := os.WriteFile(e.path("gateway.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, out := e.adminReload(); st != 200 {
		t.Fatalf("reload to %v: %d %v", dests, st, out)
	}
}

// statusUpstream is a loopback upstream answering the status it holds (200 at first).
func statusUpstream(t *testing.T) (*upstream, *atomic.Int32) {
	u, status := startUpstream(t), &atomic.Int32{}
	status.Store(200)
	u.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(int(status.Load())) })
	return u, status
}

// ids returns the delivery ids of what reached u, in order.
func ids(u *upstream) []string {
	var out []string
	for _, r := range u.requests() {
		out = append(out, r.Header.Get(delivery.HeaderID))
	}
	return out
}

// only reports whether every id in got is one of want.
func only(got []string, want ...string) bool {
	for _, id := range got {
		if !strings.Contains(" "+strings.Join(want, " ")+" ", " "+id+" ") {
			return false
		}
	}
	return true
}

// stored returns delivery id as the gateway's store holds it.
func stored(t *testing.T, e *env, id string) *delivery.Record {
	t.Helper()
	r, _, err := e.g.deliveries.Store().Get(context.Background(), id)
	if err != nil {
		t.Fatalf("store: %s: %v", id, err)
	}
	return r
}

// postFan posts one event to the fanned-out route and returns its delivery id.
func postFan(t *testing.T, e *env, n int) string {
	t.Helper()
	body := `{"fan":` + strconv.Itoa(n) + `}`
	r := e.do("POST", "/hooks/github", []byte(body), signed(body, ""))
	if r.Status != 202 {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
	return r.Header.Get(delivery.HeaderID)
}

// startFanOut runs a queued route that fans out to its upstream and to U1 (answering 503
// until told otherwise) and U2.
func startFanOut(t *testing.T) (e *env, up, u1 *upstream, u1Status *atomic.Int32, u2 *upstream) {
	t.Helper()
	up = startUpstream(t)
	u1, u1Status = statusUpstream(t)
	u2, _ = statusUpstream(t)
	u1Status.Store(503)
	e = startEnv(t, destConfig(up.URL(), u1.URL(), u2.URL()), map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}, Options{})
	return e, up, u1, u1Status, u2
}

// A reload that removes a fan-out destination sends none of its pending deliveries to
// another one: they wait in the store, no attempt spent, and go out to it once a reload
// configures its URL again, wherever in the list.
func TestQueuedFanOutDestRemovedIsHeldNotRedirected(t *testing.T) {
	e, up, u1, u1Status, u2 := startFanOut(t)

	id := postFan(t, e, 1)
	testutil.WaitFor(t, func() bool { return len(up.requests()) == 1 && len(u1.requests()) >= 1 && len(u2.requests()) == 1 })

	reloadDests(t, e, up.URL(), u2.URL())
	u1Before := len(u1.requests())
	// Many retry periods of U1's delivery, and a hold recheck: U2 gets nothing of it.
	time.Sleep(1500 * time.Millisecond)
	if got := ids(u2); len(got) != 1 || got[0] != id+"-2" {
		t.Fatalf("after the reload removing U1, U2 got %q; want only its own %s", got, id+"-2")
	}
	// An attempt to U1 in flight at the reload may still end there, nothing later.
	if n := len(u1.requests()); n > u1Before+1 || !only(ids(u1), id+"-1") {
		t.Fatalf("U1 got %q (%d before the reload) after it was removed", ids(u1), u1Before)
	}
	held := stored(t, e, id+"-1")
	if held.State != delivery.StatePending {
		t.Fatalf("U1's delivery is %s, want pending (held)", held.State)
	}
	time.Sleep(1200 * time.Millisecond)
	if again := stored(t, e, id+"-1"); again.State != delivery.StatePending || again.Attempts != held.Attempts {
		t.Fatalf("the held delivery went %s with %d attempts (was %d): held deliveries spend no attempt", again.State, again.Attempts, held.Attempts)
	}
	if !strings.Contains(e.logBuf.String(), "held in the store") {
		t.Errorf("no log line says the delivery is held:\n%s", e.logBuf.String())
	}

	// A new event now fans out to U2 only.
	id2 := postFan(t, e, 2)
	testutil.WaitFor(t, func() bool { return len(u2.requests()) == 2 })

	// U1 comes back, second in the list this time: its held delivery goes to it, and only to it.
	u1Status.Store(200)
	reloadDests(t, e, up.URL(), u2.URL(), u1.URL())
	testutil.WaitFor(t, func() bool { return stored(t, e, id+"-1").State == delivery.StateDelivered })
	got := u1.requests()
	if last := got[len(got)-1]; last.Header.Get(delivery.HeaderID) != id+"-1" || string(last.Body) != `{"fan":1}` {
		t.Fatalf("U1 got %s %q last, want its held %s", last.Header.Get(delivery.HeaderID), last.Body, id+"-1")
	}
	if !only(ids(u1), id+"-1") {
		t.Fatalf("U1 got %q: another destination's deliveries", ids(u1))
	}
	if got := ids(u2); len(got) != 2 || got[0] != id+"-2" || got[1] != id2+"-1" {
		t.Fatalf("U2 got %q, want %s then %s", got, id+"-2", id2+"-1")
	}
	if !strings.Contains(e.logBuf.String(), "configured again") {
		t.Errorf("no log line says the held destination is configured again")
	}
}

// A reload that reorders fan-out destinations keeps each pending delivery going to its
// own receiver.
func TestQueuedFanOutDestReorderedKeepsReceivers(t *testing.T) {
	e, up, u1, u1Status, u2 := startFanOut(t)

	id := postFan(t, e, 1)
	testutil.WaitFor(t, func() bool { return len(u1.requests()) >= 1 && len(u2.requests()) == 1 })
	reloadDests(t, e, up.URL(), u2.URL(), u1.URL())
	time.Sleep(500 * time.Millisecond) // U1's delivery is retried (503) where it belongs
	u1Status.Store(200)
	id2 := postFan(t, e, 2)
	testutil.WaitFor(t, func() bool {
		return stored(t, e, id+"-1").State == delivery.StateDelivered && stored(t, e, id2+"-1").State == delivery.StateDelivered &&
			stored(t, e, id2+"-2").State == delivery.StateDelivered
	})
	if got := ids(u2); len(got) != 2 || got[0] != id+"-2" || got[1] != id2+"-1" {
		t.Fatalf("U2 got %q, want only %s then %s", got, id+"-2", id2+"-1")
	}
	if got := ids(u1); !only(got, id+"-1", id2+"-2") || !only([]string{id + "-1", id2 + "-2"}, got...) {
		t.Fatalf("U1 got %q, want only (and both) %s and %s", got, id+"-1", id2+"-2")
	}
}

// A record stored by an older release carries its destination's position: it is still
// delivered there.
func TestQueuedDestLegacyPosition(t *testing.T) {
	up, u1, u2 := startUpstream(t), startUpstream(t), startUpstream(t)
	e := startEnv(t, destConfig(up.URL(), u1.URL(), u2.URL()), map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}, Options{})
	now := time.Now()
	for dest, id := range map[int]string{1: "legacy-1", 2: "legacy-2"} {
		r := &delivery.Record{ID: id, Route: "github", Dest: dest, Method: "POST", URI: "/hooks/github", Body: []byte(`{}`), ReceivedAt: now, NextAt: now}
		if err := e.g.deliveries.Store().Enqueue(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	e.g.deliveries.Wake()
	testutil.WaitFor(t, func() bool { return len(u1.requests()) == 1 && len(u2.requests()) == 1 })
	if a, b := ids(u1), ids(u2); a[0] != "legacy-1" || b[0] != "legacy-2" || len(up.requests()) != 0 {
		t.Fatalf("U1 got %q, U2 %q, the upstream %d", a, b, len(up.requests()))
	}
}

func TestDestinationIndex(t *testing.T) {
	a, b := "http://a.example/in", "http://b.example/in"
	dests := []string{a, b}
	for _, c := range []struct{ dest, want int }{
		{delivery.DestinationID(a), 0}, {delivery.DestinationID(b), 1},
		{delivery.DestinationID("http://c.example/in"), -1},
		{1, 0}, {2, 1}, {3, -1}, {-1, -1},
	} {
		if got := destinationIndex(dests, c.dest); got != c.want {
			t.Errorf("destinationIndex(%d) = %d, want %d", c.dest, got, c.want)
		}
	}
}

// Two destination URLs of one id (found by brute force: 30 bits collide after some 40,000
// URLs) are refused at reload: their deliveries could not be told apart.
func TestQueuedDestIDCollisionRefused(t *testing.T) {
	seen := map[int]string{}
	var x, y string
	for i := 0; x == ""; i++ {
		u := "http://127.0.0.1:9/c" + strconv.Itoa(i)
		id := delivery.DestinationID(u)
		if v, ok := seen[id]; ok {
			x, y = v, u
		}
		seen[id] = u
	}
	if err := checkDestinationIDs([]string{x, x}); err != nil {
		t.Fatalf("one URL listed twice: %v", err)
	}
	up := startUpstream(t)
	e := startEnv(t, destConfig(up.URL(), up.URL()+"/one"), map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}, Options{})
	cfg := strings.ReplaceAll(destConfig(up.URL(), x, y), "{{DIR}}", e.dir)
	if err := os.WriteFile(e.path("gateway.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, out := e.adminReload(); st == 200 || !strings.Contains(out["error"], "same delivery id") {
		t.Fatalf("reload with colliding destinations %s and %s: %d %v", x, y, st, out)
	}
}
