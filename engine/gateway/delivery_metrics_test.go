package gateway

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
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
	waitFor(t, func() bool {
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
