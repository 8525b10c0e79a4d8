package server

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
)

// timings records what the server reports to its Observer.
type timings struct {
	mu                      sync.Mutex
	total, policy, upstream []time.Duration
	filter                  []time.Duration
}

func (o *timings) Request(_ string, _ decisionlog.Outcome, _ int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.total = append(o.total, d)
}

func (o *timings) Policy(_ string, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.policy = append(o.policy, d)
}

func (o *timings) Filter(_, _ string, d time.Duration, _ string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.filter = append(o.filter, d)
}

func (o *timings) Upstream(_ string, d time.Duration, _ bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.upstream = append(o.upstream, d)
}

func (o *timings) State(bool) {}

// TestRequestTimesAreMeasured checks the request's times against clocks outside the gateway:
// an upstream that answers after 40 ms (the first two requests), a client that reads the wall clock before it sends
// and after the answer. The decision record's timestamp lies between the two, the upstream's
// time covers the upstream's wait, the stages' times add up to no more than the total, and
// the total to no more than what the client saw; the Observer gets the same durations. A
// request on a route without filters, served after one with them (the pooled exchange
// reused), measures its policy from its own start.
func TestRequestTimesAreMeasured(t *testing.T) {
	const wait = 40 * time.Millisecond
	up := startUpstreamHandler(t, func(c *fasthttp.RequestCtx) {
		if len(c.Request.Header.Peek("X-Slow")) > 0 {
			time.Sleep(wait)
		}
		c.SetBodyString("ok")
	})

	dir := openPolicyDir(t)
	filters, _ := filepath.Abs("../../../examples/filters")
	cfgText := `
[policies]
dir = "policies"
cross_check = 0
[[filter]]
name = "tiny"
module = "` + filepath.Join(filters, "tiny/tiny.wasm") + `"
[[route]]
name = "filtered"
prefix = "/filtered/"
upstream = "http://` + up + `"
policy = "routes.open"
filters = ["tiny"]
[[route]]
name = "plain"
prefix = "/plain/"
upstream = "http://` + up + `"
policy = "routes.open"
`
	logPath := filepath.Join(dir, "decisions.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	dlog := decisionlog.New(f, f, decisionlog.Options{})
	obs := &timings{}
	_, addr := startServer(t, filepath.Join(dir, "gateway.toml"), cfgText, func(_ *config.Config, o *Options) {
		o.Log, o.Observer = dlog, obs
	})
	client := &fasthttp.HostClient{Addr: addr}
	type seen struct{ before, after time.Time }
	var sent []seen
	for _, path := range []string{"/filtered/a", "/plain/a", "/filtered/b", "/plain/b"} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://gateway" + path)
		req.Header.SetMethod("POST")
		req.SetBodyString(`{"zen":"clock"}`)
		if len(sent) < 2 {
			req.Header.Set("X-Slow", "1")
		}
		before := time.Now()
		if err := client.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		after := time.Now()
		if resp.StatusCode() != 200 {
			t.Fatalf("%s: status %d", path, resp.StatusCode())
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
		sent = append(sent, seen{before, after})
	}
	if err := dlog.Close(); err != nil {
		t.Fatal(err)
	}

	type record struct {
		Route     string    `json:"route"`
		Timestamp time.Time `json:"timestamp"`
		Timings   struct {
			Policy, Filters, Upstream, Total int64
		} `json:"timings_us"`
	}
	lf, err := os.Open(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	var recs []record
	sc := bufio.NewScanner(lf)
	for sc.Scan() {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("record %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	if len(recs) != len(sent) {
		t.Fatalf("%d records, want %d", len(recs), len(sent))
	}
	for i, r := range recs {
		tm := r.Timings
		name := r.Route + " #" + string(rune('0'+i))
		if r.Timestamp.Before(sent[i].before.Truncate(time.Microsecond)) || r.Timestamp.After(sent[i].after) {
			t.Errorf("%s: timestamp %v outside the client's %v .. %v", name, r.Timestamp, sent[i].before, sent[i].after)
		}
		if slow := i < 2; slow && tm.Upstream < wait.Microseconds() {
			t.Errorf("%s: upstream %d µs, the upstream waited %d", name, tm.Upstream, wait.Microseconds())
		}
		if tm.Policy+tm.Filters+tm.Upstream > tm.Total {
			t.Errorf("%s: policy %d + filters %d + upstream %d µs > total %d", name, tm.Policy, tm.Filters, tm.Upstream, tm.Total)
		}
		if client := sent[i].after.Sub(sent[i].before).Microseconds(); tm.Total > client {
			t.Errorf("%s: total %d µs > the client's %d", name, tm.Total, client)
		}
		if r.Route == "plain" && tm.Filters != 0 {
			t.Errorf("%s: filters %d µs on a route without filters", name, tm.Filters)
		}
		// The Observer saw the same durations (the record's are truncated to microseconds).
		obs.mu.Lock()
		for _, c := range []struct {
			what string
			got  time.Duration
			want int64
		}{{"total", obs.total[i], tm.Total}, {"policy", obs.policy[i], tm.Policy}, {"upstream", obs.upstream[i], tm.Upstream}} {
			if c.got.Microseconds() != c.want {
				t.Errorf("%s: the Observer's %s %v, the record's %d µs", name, c.what, c.got, c.want)
			}
		}
		obs.mu.Unlock()
	}
	if len(obs.filter) != 2 {
		t.Errorf("%d filter times observed, want 2", len(obs.filter))
	}
}
