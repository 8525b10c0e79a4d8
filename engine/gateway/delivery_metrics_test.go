package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// An upstream that keeps failing opens the route's circuit breaker: the metrics and the
// status page's data show it open, with the pending deliveries and the oldest one's age.
func TestQueuedBreakerAndOldestPendingShown(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) })
	e := startQueued(t, up.URL(), 100)
	for i := range 6 {
		body := `{"n":` + strconv.Itoa(i) + `}`
		if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "")); r.Status != 202 {
			t.Fatalf("%d", r.Status)
		}
	}
	testutil.WaitFor(t, func() bool {
		return strings.Contains(httpGet(t, e.admin+"/metrics"), `hookwall_delivery_breaker_open{destination="0",route="github"} 1`)
	})
	time.Sleep(50 * time.Millisecond) // the oldest pending ages
	metrics := httpGet(t, e.admin+"/metrics")
	m := regexp.MustCompile(`hookwall_delivery_oldest_pending_age_seconds\{route="github"\} ([0-9.e+-]+)`).FindStringSubmatch(metrics)
	if m == nil {
		t.Fatalf("no oldest pending age:\n%s", metrics)
	}
	if age, _ := strconv.ParseFloat(m[1], 64); age <= 0 || age > 60 {
		t.Fatalf("oldest pending age %v", age)
	}
	if !regexp.MustCompile(`hookwall_delivery_depth\{route="github",state="pending"\} [1-6]\n`).MatchString(metrics) {
		t.Fatalf("no pending depth:\n%s", metrics)
	}
	var doc struct {
		Deliveries []routeDepth `json:"deliveries"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, e.admin+"/-/recent")), &doc); err != nil || len(doc.Deliveries) != 1 {
		t.Fatalf("/-/recent: %+v %v", doc.Deliveries, err)
	}
	if d := doc.Deliveries[0]; d.Route != "github" || !d.BreakerOpen || d.Pending == 0 || d.OldestPendingSec <= 0 {
		t.Fatalf("status page data: %+v", d)
	}
}

// With inspect_bodies and the admin token, GET /-/deliveries/{id} shows the stored headers
// and body to a caller with the token, and nothing to one without.
func TestDeliveryBodiesNeedTheToken(t *testing.T) {
	up := startUpstream(t)
	cfg := strings.ReplaceAll(queuedConfig, "[admin]\nlisten = \"127.0.0.1:0\"", "[admin]\nlisten = \"127.0.0.1:0\"\ntoken = \"adm1n\"")
	cfg = strings.ReplaceAll(cfg, "max_pending = {{MAX}}", "max_pending = 10\ninspect_bodies = true")
	e := startEnv(t, strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL()), map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}, Options{})
	body := `{"secret":"INSPECTED-PAYLOAD"}`
	id := e.do("POST", "/hooks/github", []byte(body), signed(body, "")).Header.Get("Hookwall-Delivery-Id")
	testutil.WaitFor(t, func() bool { return len(up.requests()) == 1 })
	get := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", e.admin+"/-/deliveries/"+id, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	for _, token := range []string{"", "wrong"} {
		if st, doc := get(token); st != 401 || strings.Contains(doc, "INSPECTED") {
			t.Fatalf("token %q: %d %s", token, st, doc)
		}
	}
	st, doc := get("adm1n")
	if st != 200 || !strings.Contains(doc, `"body": "{\"secret\":\"INSPECTED-PAYLOAD\"}"`) || !strings.Contains(doc, githubSig("s3cret", []byte(body))) {
		t.Fatalf("with the token: %d %s", st, doc)
	}
}

// With two queued routes failing, the status page shows each route's breaker open, not
// only the last route's: every route's line is updated where the page reads it.
func TestQueuedBreakersOfEveryRouteShown(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) { ctx.SetStatusCode(503) })
	// The "direct" route is queued too; it sorts before "github" in the store's depth.
	cfg := queuedConfig + "delivery = \"queued\"\nretry = [\"50ms\", \"50ms\", \"50ms\"]\n"
	cfg = strings.ReplaceAll(strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL()), "{{MAX}}", "100")
	e := startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret"}, Options{})
	for _, path := range []string{"/hooks/direct", "/hooks/github"} {
		for i := range 6 {
			body := `{"n":` + strconv.Itoa(i) + `}`
			if r := e.do("POST", path, []byte(body), signed(body, "")); r.Status != 202 {
				t.Fatalf("%s: %d", path, r.Status)
			}
		}
	}
	testutil.WaitFor(t, func() bool {
		m := httpGet(t, e.admin+"/metrics")
		return strings.Contains(m, `hookwall_delivery_breaker_open{destination="0",route="direct"} 1`) &&
			strings.Contains(m, `hookwall_delivery_breaker_open{destination="0",route="github"} 1`)
	})
	var doc struct {
		Deliveries []routeDepth `json:"deliveries"`
	}
	if err := json.Unmarshal([]byte(httpGet(t, e.admin+"/-/recent")), &doc); err != nil || len(doc.Deliveries) != 2 {
		t.Fatalf("/-/recent: %+v %v", doc.Deliveries, err)
	}
	for _, d := range doc.Deliveries {
		if !d.BreakerOpen || d.Pending == 0 {
			t.Errorf("status page data: %+v", d)
		}
	}
}
