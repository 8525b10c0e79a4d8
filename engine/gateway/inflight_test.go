package gateway

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/redistest"
)

const inflightPolicy = `package routes.dd

allow := true

dedupe := {"key": input.request.headers["x-delivery"], "ttl": "1s"}
`

// TestDuplicateOfASlowRequestIsInFlight: the claim on a delivery lives as long as its
// request may, not the dedupe TTL: a duplicate that comes after the TTL but while the first
// is still at a slow upstream gets 409, and is not forwarded a second time.
func TestDuplicateOfASlowRequestIsInFlight(t *testing.T) {
	up := startUpstream(t)
	var n atomic.Int32
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 1 {
			time.Sleep(2500 * time.Millisecond) // past the 1 s dedupe TTL
		}
		ctx.SetStatusCode(200)
	})
	head := strings.Replace(quietHead, `decisions = "off"`, `decisions = "{{DIR}}/decisions.log"`, 1)
	cfg := head + fmt.Sprintf(`
[[route]]
name = "dd"
path = "/hooks/dd"
upstream = %q
policy = "routes.dd"
timeout = "10s"
`, up.URL())
	e := startEnv(t, cfg, map[string]string{"policies/dd.rego": inflightPolicy}, Options{Logger: discardLogger()})
	post := func() int {
		req, _ := http.NewRequest("POST", e.base+"/hooks/dd", strings.NewReader("{}"))
		req.Header.Set("X-Delivery", "slow-1")
		resp, err := client.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	first := make(chan int, 1)
	go func() { first <- post() }()
	time.Sleep(1500 * time.Millisecond)
	if st := post(); st != 409 {
		t.Errorf("a duplicate while the first is still in flight, past the dedupe TTL: %d, want 409", st)
	}
	if st := <-first; st != 200 {
		t.Errorf("the first: %d", st)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("the upstream got the delivery %d times, want once", got)
	}
	e.stop() // flushes the decision log
	var outcomes []string
	for _, r := range decisionRecords(t, filepath.Join(e.dir, "decisions.log")) {
		outcomes = append(outcomes, fmt.Sprint(r["outcome"], " ", r["status"]))
	}
	if want := []string{"in_flight 409", "allowed 200"}; !slices.Equal(outcomes, want) {
		t.Errorf("decision log: %q, want %q", outcomes, want)
	}
}

// TestSettleOutlastsARedisStall: Redis holds its writes (CLIENT PAUSE) while the upstream
// answers, so the first call that marks the delivery delivered times out; settle makes it
// again within its deadline, and a replay is answered as a duplicate, not forwarded.
func TestSettleOutlastsARedisStall(t *testing.T) {
	rs := redistest.Start(t)
	up := startUpstream(t)
	var n atomic.Int32
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		if n.Add(1) == 1 {
			pauseWrites(t, rs.Addr(), 400)
		}
		ctx.SetStatusCode(200)
	})
	e := startEnv(t, fleetConfig(up.URL(), rs.URL(), "closed", "50ms"), map[string]string{"policies/fleet.rego": fleetPolicy}, Options{})
	h := map[string]string{"X-Delivery": "stalled-1"}
	if r := e.do("POST", "/hooks/fleet", nil, h); r.Status != 200 {
		t.Fatalf("first delivery: %d", r.Status)
	}
	time.Sleep(500 * time.Millisecond) // the pause is over
	if r := e.do("POST", "/hooks/fleet", nil, h); r.Status != 200 || r.Header.Get("Hookwall-Duplicate") != "true" {
		t.Errorf("the replay: %d, duplicate %q; want 200 and a duplicate (the delivered mark made despite the stall)", r.Status, r.Header.Get("Hookwall-Duplicate"))
	}
	if got := n.Load(); got != 1 {
		t.Errorf("the upstream got the delivery %d times, want once", got)
	}
}

// pauseWrites asks the Redis at addr to hold every client's writes for ms milliseconds.
func pauseWrites(t *testing.T, addr string, ms int) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	n := fmt.Sprint(ms)
	fmt.Fprintf(c, "*4\r\n$6\r\nCLIENT\r\n$5\r\nPAUSE\r\n$%d\r\n%s\r\n$5\r\nWRITE\r\n", len(n), n)
	buf := make([]byte, 64)
	if k, err := c.Read(buf); err != nil || !strings.HasPrefix(string(buf[:k]), "+OK") {
		t.Errorf("CLIENT PAUSE: %q %v", buf[:k], err)
	}
}
