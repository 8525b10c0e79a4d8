package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/delivery/postgres/pgtest"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

const queuedPolicy = githubPolicy + `
dedupe := {"key": input.request.headers["x-github-delivery"], "ttl": "1h"} if input.request.headers["x-github-delivery"]
`

const queuedConfig = `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[policies]
dir = "policies"

[log]
decisions = "{{DIR}}/decisions.log"

[secrets]
github = {file = "github.secret"}

[delivery]
max_pending = {{MAX}}

[[route]]
name = "github"
path = "/hooks/github"
upstream = "{{UPSTREAM}}/base"
policy = "routes.github"
timeout = "1s"
delivery = "queued"
retry = ["50ms", "50ms", "50ms"]

[[route]]
name = "direct"
path = "/hooks/direct"
upstream = "{{UPSTREAM}}"
policy = "routes.github"
`

func startQueued(t *testing.T, upstreamURL string, maxPending int) *env {
	t.Helper()
	cfg := strings.ReplaceAll(queuedConfig, "{{UPSTREAM}}", upstreamURL)
	cfg = strings.ReplaceAll(cfg, "{{MAX}}", strconv.Itoa(maxPending))
	return startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}, Options{})
}

// startDirect runs queuedConfig with the github route direct: no route is queued.
func startDirect(t *testing.T, upstreamURL string) *env {
	t.Helper()
	cfg := strings.ReplaceAll(queuedConfig, `delivery = "queued"`+"\n"+`retry = ["50ms", "50ms", "50ms"]`, "")
	cfg = strings.ReplaceAll(strings.ReplaceAll(cfg, "{{UPSTREAM}}", upstreamURL), "{{MAX}}", "5")
	return startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}, Options{})
}

func signed(body string, delivery string) map[string]string {
	h := map[string]string{"X-Hub-Signature-256": githubSig("s3cret", []byte(body)), "X-GitHub-Event": "push", "Content-Type": "application/json", "Connection": "keep-alive, X-Drop", "X-Drop": "1"}
	if delivery != "" {
		h["X-GitHub-Delivery"] = delivery
	}
	return h
}

// decisionLines returns the decision-log records with the given outcome.
func decisionLines(t *testing.T, e *env, outcome string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range decisionRecords(t, filepath.Join(e.dir, "decisions.log")) {
		if m["outcome"] == outcome {
			out = append(out, m)
		}
	}
	return out
}

// Neither a direct route nor a queued one adds a User-Agent or a Content-Type the provider
// did not send: the upstream gets the client's, or none.
func TestForwardsTheClientsUserAgentAndContentTypeOnly(t *testing.T) {
	up := startUpstream(t)
	e := startQueued(t, up.URL(), 100)
	cases := []struct{ name, value string }{
		{"User-Agent", ""}, {"User-Agent", "GitHub-Hookshot/abc"},
		{"Content-Type", ""}, {"Content-Type", "application/json"},
	}
	i := 0
	for _, path := range []string{"/hooks/direct", "/hooks/github"} {
		for _, c := range cases {
			body := `{"zen":"agent"}`
			h := signed(body, nextDelivery())
			h[c.name] = c.value // empty: the request carries no value for it
			if r := e.do("POST", path, []byte(body), h); r.Status != 200 && r.Status != 202 {
				t.Fatalf("%s: status %d %s", path, r.Status, r.Body)
			}
			i++
			testutil.WaitFor(t, func() bool { return len(up.requests()) == i })
			got := up.requests()[i-1].Header.Values(c.name)
			if c.value == "" && len(got) != 0 || c.value != "" && (len(got) != 1 || got[0] != c.value) {
				t.Errorf("%s with %s %q: the upstream got %q", path, c.name, c.value, got)
			}
		}
	}
}

// A queued route answers 202 with the delivery id once the request is stored, and workers
// deliver it as it would have been forwarded, with the delivery headers.
func TestQueuedDelivers(t *testing.T) {
	up := startUpstream(t)
	e := startQueued(t, up.URL(), 100)
	body := `{"zen":"queued"}`
	r := e.do("POST", "/hooks/github?x=1", []byte(body), signed(body, "d-1"))
	if r.Status != 202 {
		t.Fatalf("status %d %s, want 202", r.Status, r.Body)
	}
	id := r.Header.Get("Hookwall-Delivery-Id")
	var got struct {
		DeliveryID string `json:"delivery_id"`
	}
	if err := json.Unmarshal([]byte(r.Body), &got); err != nil || got.DeliveryID != id || len(id) != 32 {
		t.Fatalf("body %q, header id %q", r.Body, id)
	}
	testutil.WaitFor(t, func() bool { return len(up.requests()) == 1 })
	req := up.requests()[0]
	if req.URI != "/base/hooks/github?x=1" || string(req.Body) != body || req.Method != "POST" {
		t.Fatalf("delivered %s %s %q", req.Method, req.URI, req.Body)
	}
	for k, want := range map[string]string{"Hookwall-Delivery-Id": id, "Hookwall-Attempt": "1", "X-Hookwall-Verified": "github", "X-Forwarded-For": "127.0.0.1", "X-Hub-Signature-256": githubSig("s3cret", []byte(body))} {
		if v := req.Header.Get(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if req.Header.Get("X-Drop") != "" || req.Header.Get("Connection") == "keep-alive, X-Drop" {
		t.Errorf("hop-by-hop headers were delivered: %v", req.Header)
	}
	// The dedupe key was marked delivered when stored.
	if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "d-1")); r.Status != 200 || r.Header.Get("Hookwall-Duplicate") != "true" {
		t.Fatalf("replayed delivery id: %d %v", r.Status, r.Header)
	}
	// A bad signature is refused before anything is stored.
	if r := e.do("POST", "/hooks/github", []byte(body), map[string]string{"X-Hub-Signature-256": "sha256=00"}); r.Status != 401 || r.Header.Get("Hookwall-Delivery-Id") != "" {
		t.Fatalf("bad signature: %d", r.Status)
	}
	testutil.WaitFor(t, func() bool { return len(decisionLines(t, e, "delivered")) == 1 })
	line := decisionLines(t, e, "delivered")[0]
	if line["delivery_id"] != id || line["attempts"] != float64(1) || line["status"] != float64(200) {
		t.Fatalf("delivered line: %v", line)
	}
	if q := decisionLines(t, e, "queued"); len(q) != 1 || q[0]["delivery_id"] != id || q[0]["status"] != float64(202) || q[0]["decision_id"] != line["decision_id"] {
		t.Fatalf("queued lines: %v", q)
	}
	if len(up.requests()) != 1 {
		t.Fatalf("%d deliveries, want 1", len(up.requests()))
	}
}

// Connection errors, 408, 429 and 5xx are retried on the route's schedule; other 4xx is
// final; the schedule's end makes a delivery dead.
func TestQueuedRetries(t *testing.T) {
	up := startUpstream(t)
	var calls atomic.Int32
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		switch n := calls.Add(1); string(ctx.Request.Header.Peek("X-Case")) {
		case "flaky": // 503, 429, 408, then 200
			if n <= 3 {
				ctx.SetStatusCode([]int{503, 429, 408}[n-1])
				return
			}
			ctx.SetStatusCode(200)
		case "gone":
			ctx.SetStatusCode(410)
		default:
			ctx.SetStatusCode(500)
		}
	})
	e := startQueued(t, up.URL(), 100)
	send := func(c string) string {
		body := `{"case":"` + c + `"}`
		h := signed(body, "")
		h["X-Case"] = c
		r := e.do("POST", "/hooks/github", []byte(body), h)
		if r.Status != 202 {
			t.Fatalf("%s: %d", c, r.Status)
		}
		return r.Header.Get("Hookwall-Delivery-Id")
	}
	flaky := send("flaky")
	testutil.WaitFor(t, func() bool { return len(decisionLines(t, e, "delivered")) == 1 })
	if l := decisionLines(t, e, "delivered")[0]; l["delivery_id"] != flaky || l["attempts"] != float64(4) {
		t.Fatalf("flaky: %v", l)
	}
	var attempts []string
	for _, r := range up.requests() {
		attempts = append(attempts, r.Header.Get("Hookwall-Attempt"))
	}
	if strings.Join(attempts, ",") != "1,2,3,4" {
		t.Fatalf("attempt headers %v", attempts)
	}
	gone := send("gone")
	broken := send("broken")
	testutil.WaitFor(t, func() bool { return len(decisionLines(t, e, "dead")) == 2 })
	for _, l := range decisionLines(t, e, "dead") {
		switch l["delivery_id"] {
		case gone:
			if l["attempts"] != float64(1) || l["status"] != float64(410) {
				t.Errorf("410 is final: %v", l)
			}
		case broken:
			if l["attempts"] != float64(4) || l["status"] != float64(500) {
				t.Errorf("500 is retried 3 times then dead: %v", l)
			}
		default:
			t.Errorf("unexpected dead line %v", l)
		}
	}
	metrics := httpGet(t, e.admin+"/metrics")
	for _, want := range []string{
		`hookwall_delivery_attempts_total{outcome="retry",route="github"} 6`,
		`hookwall_delivery_attempts_total{outcome="dead",route="github"} 2`,
		`hookwall_delivery_depth{route="github",state="dead"} 2`,
		`hookwall_delivery_depth{route="github",state="delivered"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// A full store answers 503 with Retry-After and acknowledges nothing; the dedupe key is
// released so the provider's retry goes through.
func TestQueuedFull(t *testing.T) {
	e := startQueued(t, "http://127.0.0.1:1", 2) // upstream down: everything stays pending
	for i := range 2 {
		body := `{"n":` + strconv.Itoa(i) + `}`
		if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "")); r.Status != 202 {
			t.Fatalf("%d: %d", i, r.Status)
		}
	}
	body := `{"n":3}`
	r := e.do("POST", "/hooks/github", []byte(body), signed(body, "d-full"))
	if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.Header.Get("Hookwall-Delivery-Id") != "" {
		t.Fatalf("full store: %d %v %s", r.Status, r.Header, r.Body)
	}
	if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "d-full")); r.Status != 503 {
		t.Fatalf("retry of a refused request: %d (the dedupe key must have been released)", r.Status)
	}
	if got := httpGet(t, e.admin+"/metrics"); !strings.Contains(got, `hookwall_delivery_depth{route="github",state="pending"} 2`) {
		t.Fatal("depth metric does not show 2 pending")
	}
}

// A gateway without a queued route opens no store.
func TestNoQueuedRouteOpensNoStore(t *testing.T) {
	up := startUpstream(t)
	e := startDirect(t, up.URL())
	body := `{}`
	if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "")); r.Status != 200 {
		t.Fatalf("direct: %d", r.Status)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "hookwall-deliveries.db")); !os.IsNotExist(err) {
		t.Fatalf("a store was created without a queued route: %v", err)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	r, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// The delivery API: bodies, and the target's query (it may carry a credential), stay hidden
// without inspect_bodies and a token, a POST needs the admin header, a bulk replay needs a
// filter that bounds it (a time outside what the stores compare, which wrapped around, is
// refused, and so is a limit it would not apply), and a gateway without a queued route has
// no store to show.
func TestDeliveriesAdminAPI(t *testing.T) {
	up := startUpstream(t)
	e := startQueued(t, up.URL(), 100)
	body := `{"secret":"payload"}`
	id := e.do("POST", "/hooks/github?api_key=QUERY-KEY-0123", []byte(body), signed(body, "")).Header.Get("Hookwall-Delivery-Id")
	// The upstream answers before the attempt is recorded: wait for the record.
	var doc string
	testutil.WaitFor(t, func() bool {
		doc = httpGet(t, e.admin+"/-/deliveries/"+id)
		return len(up.requests()) == 1 && strings.Contains(doc, `"state": "delivered"`)
	})
	if !strings.Contains(doc, `"state": "delivered"`) || !strings.Contains(doc, `"body_bytes": 20`) || strings.Contains(doc, "payload") || strings.Contains(doc, "sha256=") ||
		strings.Contains(doc, "QUERY-KEY") || !strings.Contains(doc, `"query_withheld": true`) {
		t.Fatalf("show without inspect_bodies:\n%s", doc)
	}
	if list := httpGet(t, e.admin+"/-/deliveries?route=github&since=1h"); !strings.Contains(list, id) || strings.Contains(list, "QUERY-KEY") {
		t.Fatalf("list:\n%s", list)
	}
	for _, q := range []string{"until=1600-01-01T00:00:00Z", "since=2999-01-01T00:00:00Z", "since=0001-01-01T00:00:00Z", "state=delivered&limit=1", "route="} {
		req, _ := http.NewRequest("POST", e.admin+"/-/deliveries/replay?"+q, nil)
		req.Header.Set("Hookwall-Admin", "1")
		r, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 400 {
			t.Fatalf("bulk replay ?%s: %d %s, want 400", q, r.StatusCode, b)
		}
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("the upstream got %d requests, want 1: a refused replay sent some", n)
	}
	if list := httpGet(t, e.admin+"/-/deliveries?route=other"); strings.Contains(list, id) {
		t.Fatalf("list of another route shows it:\n%s", list)
	}
	r, err := client.Post(e.admin+"/-/deliveries/"+id+"/replay", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 403 {
		t.Fatalf("a simple cross-site POST got %d, want 403", r.StatusCode)
	}
	req, _ := http.NewRequest("DELETE", e.admin+"/-/deliveries/"+id, nil)
	if r, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 403 {
		t.Fatalf("a DELETE without the admin header got %d, want 403", r.StatusCode)
	}
	req.Header.Set("Hookwall-Admin", "1")
	if r, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("purge: %d", r.StatusCode)
	}

	direct := startDirect(t, up.URL())
	if got := httpGet(t, direct.admin+"/-/deliveries"); !strings.Contains(got, "no delivery store") {
		t.Fatalf("no store: %s", got)
	}
}

// With encryption_keys the SQLite file holds no request body, header or query in the clear
// (a credential in the target's query is sealed with them), and the upstream still gets the
// request byte for byte, its query included.
func TestQueuedSealedAtRest(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) }) // kept pending
	cfg := strings.ReplaceAll(queuedConfig, "max_pending = {{MAX}}", "max_pending = 100\nencryption_keys = [\"dkey\"]")
	cfg = strings.ReplaceAll(cfg, `github = {file = "github.secret"}`, "github = {file = \"github.secret\"}\ndkey = {file = \"d.key\"}")
	cfg = strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL())
	e := startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret", "d.key": strings.Repeat("ab", 32)}, Options{})
	body := `{"account":"TOP-SECRET-PAYLOAD"}`
	if r := e.do("POST", "/hooks/github?api_key=QUERY-API-KEY-0123456789", []byte(body), signed(body, "")); r.Status != 202 {
		t.Fatalf("status %d", r.Status)
	}
	testutil.WaitFor(t, func() bool { return len(up.requests()) >= 1 })
	var raw []byte
	for _, name := range []string{"hookwall-deliveries.db", "hookwall-deliveries.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(e.dir, name))
		raw = append(raw, b...)
	}
	for _, secret := range []string{"TOP-SECRET-PAYLOAD", githubSig("s3cret", []byte(body)), "QUERY-API-KEY-0123456789"} {
		if len(raw) == 0 || strings.Contains(string(raw), secret) {
			t.Fatalf("the store file holds %q in the clear (%d bytes read)", secret, len(raw))
		}
	}
	got := up.requests()[0]
	if string(got.Body) != body || got.Header.Get("X-Hub-Signature-256") != githubSig("s3cret", []byte(body)) || !strings.HasSuffix(got.URI, "?api_key=QUERY-API-KEY-0123456789") {
		t.Fatalf("delivered %s %q %v", got.URI, got.Body, got.Header)
	}
}

// max_in_flight bounds the attempts to a route at once; max_rate bounds them per second.
func TestQueuedUpstreamProtection(t *testing.T) {
	var cur, peak atomic.Int32
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(50 * time.Millisecond)
		cur.Add(-1)
	})
	run := func(t *testing.T, keys string, n int) time.Duration {
		cfg := strings.ReplaceAll(queuedConfig, `retry = ["50ms", "50ms", "50ms"]`, keys)
		cfg = strings.ReplaceAll(strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL()), "{{MAX}}", "1000")
		e := startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}, Options{})
		before := len(up.requests())
		start := time.Now()
		for i := range n {
			body := `{"n":` + strconv.Itoa(i) + `}`
			if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "")); r.Status != 202 {
				t.Fatalf("%d", r.Status)
			}
		}
		testutil.WaitFor(t, func() bool { return len(up.requests())-before == n })
		return time.Since(start)
	}
	t.Run("max_in_flight", func(t *testing.T) {
		peak.Store(0)
		run(t, "max_in_flight = 2", 16)
		if p := peak.Load(); p != 2 {
			t.Fatalf("peak concurrency %d, want 2", p)
		}
	})
	t.Run("max_rate", func(t *testing.T) {
		// A bucket of 10 and 10 a second: 25 deliveries take at least 1.5s.
		if d := run(t, "max_rate = 10", 25); d < 1400*time.Millisecond {
			t.Fatalf("25 deliveries at max_rate 10 took %v", d)
		}
	})
}

// ordered = true delivers one at a time in arrival order; a failing head holds the rest.
func TestQueuedOrdered(t *testing.T) {
	up := startUpstream(t)
	var mu sync.Mutex
	var seen []string
	var cur, peak atomic.Int32
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		n := cur.Add(1)
		defer cur.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, string(ctx.PostBody()))
		if string(ctx.PostBody()) == `{"n":0}` && len(seen) < 3 {
			ctx.SetStatusCode(503) // the head fails twice
		}
	})
	cfg := strings.ReplaceAll(queuedConfig, `retry = ["50ms", "50ms", "50ms"]`, `retry = ["50ms", "50ms", "50ms"]`+"\nordered = true")
	cfg = strings.ReplaceAll(strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL()), "{{MAX}}", "100")
	e := startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}, Options{})
	for i := range 6 {
		body := `{"n":` + strconv.Itoa(i) + `}`
		if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "")); r.Status != 202 {
			t.Fatalf("%d", r.Status)
		}
	}
	testutil.WaitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 8 })
	time.Sleep(100 * time.Millisecond) // nothing more arrives
	mu.Lock()
	defer mu.Unlock()
	want := `{"n":0} {"n":0} {"n":0} {"n":1} {"n":2} {"n":3} {"n":4} {"n":5}`
	if got := strings.Join(seen, " "); got != want || peak.Load() != 1 {
		t.Fatalf("arrivals %s (peak %d at once), want %s one at a time", got, peak.Load(), want)
	}
}

// The status page shows the store's depth per queued route, rendered by the page itself.
func TestStatusPageDeliveries(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		if strings.Contains(string(ctx.PostBody()), "gone") {
			ctx.SetStatusCode(410)
		}
	})
	e := startQueued(t, up.URL(), 100)
	for _, body := range []string{`{"a":1}`, `{"a":"gone"}`} {
		if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "")); r.Status != 202 {
			t.Fatal(r.Status)
		}
	}
	testutil.WaitFor(t, func() bool {
		return strings.Contains(httpGet(t, e.admin+"/-/recent"), `"dead": 1`) && strings.Contains(httpGet(t, e.admin+"/-/recent"), `"delivered": 1`)
	})
	var doc struct {
		Deliveries []routeDepth `json:"deliveries"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, e.admin+"/-/recent")), &doc); err != nil || len(doc.Deliveries) != 1 || doc.Deliveries[0] != (routeDepth{Route: "github", Delivered: 1, Dead: 1}) {
		t.Fatalf("/-/recent deliveries: %+v %v", doc.Deliveries, err)
	}
	dom := string(runChromium(t, chromium(t), e.admin+"/", "--dump-dom"))
	if !strings.Contains(dom, `<table id="deliveries">`) || !strings.Contains(dom, `<td><b>github</b></td><td class="num">0</td><td class="num">–</td><td class="num">1</td><td class="num">1</td>`) {
		t.Fatalf("the page does not show the depth:\n%s", dom)
	}
}

// destinations fan a queued request out: each destination gets it under its own path,
// with its own id and its own attempts.
func TestQueuedFanOut(t *testing.T) {
	up, d1, d2 := startUpstream(t), startUpstream(t), startUpstream(t)
	var d2calls atomic.Int32
	d2.setHandler(func(ctx *fasthttp.RequestCtx) {
		if d2calls.Add(1) == 1 {
			ctx.SetStatusCode(503) // the second destination fails once
		}
	})
	cfg := strings.ReplaceAll(queuedConfig, `retry = ["50ms", "50ms", "50ms"]`, `retry = ["50ms", "50ms", "50ms"]`+"\n"+`destinations = ["`+d1.URL()+`/d1/", "`+d2.URL()+`"]`)
	cfg = strings.ReplaceAll(strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL()), "{{MAX}}", "100")
	e := startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}, Options{})
	body := `{"fan":"out"}`
	r := e.do("POST", "/hooks/github?q=1", []byte(body), signed(body, ""))
	if r.Status != 202 {
		t.Fatalf("status %d", r.Status)
	}
	id := r.Header.Get("Hookwall-Delivery-Id")
	testutil.WaitFor(t, func() bool { return len(up.requests()) == 1 && len(d1.requests()) == 1 && len(d2.requests()) == 2 })
	for _, c := range []struct {
		got            recorded
		uri, id, tries string
	}{
		{up.requests()[0], "/base/hooks/github?q=1", id, "1"},
		{d1.requests()[0], "/d1/hooks/github?q=1", id + "-1", "1"},
		{d2.requests()[1], "/hooks/github?q=1", id + "-2", "2"},
	} {
		if c.got.URI != c.uri || string(c.got.Body) != body || c.got.Header.Get("Hookwall-Delivery-Id") != c.id || c.got.Header.Get("Hookwall-Attempt") != c.tries {
			t.Errorf("got %s %q id %s attempt %s, want %s id %s attempt %s", c.got.URI, c.got.Body, c.got.Header.Get("Hookwall-Delivery-Id"), c.got.Header.Get("Hookwall-Attempt"), c.uri, c.id, c.tries)
		}
	}
	testutil.WaitFor(t, func() bool { return len(decisionLines(t, e, "delivered")) == 3 })
}

// A store that is down answers 503 + Retry-After and acknowledges nothing; the dedupe key
// is released, so the provider's retry is not taken for a duplicate.
func TestQueuedStoreDown(t *testing.T) {
	pg := pgtest.Start(t)
	dbURL := pg.NewDatabase(t)
	up := startUpstream(t)
	cfg := strings.ReplaceAll(queuedConfig, "max_pending = {{MAX}}", "store = \"postgres\"\nurl = \""+dbURL+"\"")
	cfg = strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL())
	e := startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}, Options{})
	body := `{"store":"up"}`
	if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "d-up")); r.Status != 202 {
		t.Fatalf("store up: %d %s", r.Status, r.Body)
	}
	testutil.WaitFor(t, func() bool { return len(up.requests()) == 1 })
	pg.Stop(t)
	body = `{"store":"down"}`
	for i := range 2 {
		r := e.do("POST", "/hooks/github", []byte(body), signed(body, "d-down"))
		if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.Header.Get("Hookwall-Delivery-Id") != "" || strings.Contains(r.Body, "delivery_id") {
			t.Fatalf("try %d with the store down: %d %v %s", i+1, r.Status, r.Header, r.Body)
		}
	}
	if m := httpGet(t, e.admin+"/metrics"); !strings.Contains(m, "hookwall_delivery_store_up 0") {
		t.Fatal("hookwall_delivery_store_up is not 0 with the store down")
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("the upstream got %d requests, want only the one stored before the outage", n)
	}
}
