package gateway

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/testutil"
	"github.com/hookwall/hookwall/engine/tlsconf/tlstest"
)

// upstreamIdle is how long the upstreams below keep an idle keep-alive connection: far
// below the gateway's 30 s, as Node's default of 5 s is.
const upstreamIdle = 100 * time.Millisecond

// idleClosingUpstream is a net/http server that closes keep-alive connections idle for
// upstreamIdle, and counts the requests it gets and the attempt numbers it is sent.
type idleClosingUpstream struct {
	srv      *httptest.Server
	n        atomic.Int32
	mu       sync.Mutex
	attempts []string
}

func startIdleClosingUpstream(t *testing.T, ca *tlstest.CA) *idleClosingUpstream {
	t.Helper()
	u := &idleClosingUpstream{}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		u.n.Add(1)
		u.mu.Lock()
		u.attempts = append(u.attempts, r.Header.Get("Hookwall-Attempt"))
		u.mu.Unlock()
		_, _ = io.WriteString(w, "ok")
	}))
	u.srv.Config.IdleTimeout = upstreamIdle
	u.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if ca != nil {
		u.srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLS}}
		u.srv.StartTLS()
	} else {
		u.srv.Start()
	}
	t.Cleanup(u.srv.Close)
	return u
}

// An upstream that closes idle keep-alive connections sooner than the gateway drops them
// gets every request that comes after such a close, once: the gateway finds the closed
// connection before it writes, and sends the request on another. Before, each such request
// was a 502 the upstream never saw.
func TestUpstreamThatClosesIdleConnections(t *testing.T) {
	t.Run("direct route", func(t *testing.T) {
		up := startIdleClosingUpstream(t, nil)
		e := startQueued(t, up.srv.URL, 100)
		sent := 0
		for round := range 3 {
			// Several requests at once leave several connections in the pool, all of which
			// the upstream then closes.
			var wg sync.WaitGroup
			for range 6 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					body := `{"zen":"idle"}`
					if r := e.do("POST", "/hooks/direct", []byte(body), signed(body, nextDelivery())); r.Status != 200 {
						t.Errorf("round %d: status %d %s", round, r.Status, r.Body)
					}
				}()
			}
			wg.Wait()
			sent += 6
			time.Sleep(3 * upstreamIdle)
		}
		if got := int(up.n.Load()); got != sent {
			t.Fatalf("the upstream got %d requests, want %d", got, sent)
		}
	})
	t.Run("queued route", func(t *testing.T) {
		up := startIdleClosingUpstream(t, nil)
		e := startQueued(t, up.srv.URL, 100)
		for i := range 3 {
			body := `{"zen":"idle queued"}`
			if r := e.do("POST", "/hooks/github", []byte(body), signed(body, nextDelivery())); r.Status != 202 {
				t.Fatalf("delivery %d: status %d %s", i, r.Status, r.Body)
			}
			testutil.WaitFor(t, func() bool { return int(up.n.Load()) == i+1 })
			time.Sleep(3 * upstreamIdle)
		}
		up.mu.Lock()
		defer up.mu.Unlock()
		if strings.Join(up.attempts, ",") != "1,1,1" {
			t.Fatalf("attempts %v, want each delivered at its first attempt", up.attempts)
		}
	})
	t.Run("https upstream", func(t *testing.T) {
		ca := tlstest.NewCA(t, "idle upstream CA")
		up := startIdleClosingUpstream(t, ca)
		e := startOpenRoute(t, up.srv.URL, "", `upstream_ca = "ca.pem"`, map[string]string{"ca.pem": string(ca.CertPEM)})
		for i := range 3 {
			if r := e.do("POST", "/open", []byte(`{}`), nil); r.Status != 200 || r.Body != "ok" {
				t.Fatalf("request %d: status %d %q\n%s", i, r.Status, r.Body, e.logBuf.String())
			}
			time.Sleep(3 * upstreamIdle)
		}
		if got := up.n.Load(); got != 3 {
			t.Fatalf("the upstream got %d requests, want 3", got)
		}
	})
}

// startOpenRoute runs a gateway with one route, "open" for every path, that allows every
// request and forwards it to upstream. serverExtra and routeExtra are more lines of TOML for
// [server] and for the route; files are written beside the configuration.
func startOpenRoute(t *testing.T, upstream, serverExtra, routeExtra string, files map[string]string) *env {
	t.Helper()
	cfg := `
[server]
listen = "127.0.0.1:0"
` + serverExtra + `

[admin]
listen = "127.0.0.1:0"

[log]
decisions = "off"

[[route]]
name = "open"
prefix = "/"
upstream = "` + upstream + `"
policy = "routes.open"
` + routeExtra + "\n"
	all := map[string]string{"policies/routes/open.rego": secAllowAll}
	for k, v := range files {
		all[k] = v
	}
	return startEnv(t, cfg, all, Options{})
}

// upstreamConns is the connections a route's client keeps to its upstream at most.
const upstreamConns = 1024

// A burst of more requests than the route's client keeps connections to a slow upstream
// waits for a free connection, within the route's timeout, rather than getting a 502 at once
// from an upstream that is merely busy; past the timeout, it is a 504.
func TestBurstBeyondTheUpstreamConnectionsWaits(t *testing.T) {
	t.Run("a connection comes free", func(t *testing.T) { burstBeyondUpstreamConns(t, "10s", 200) })
	// Long enough for all of the first upstreamConns to reach the upstream on a loaded
	// machine (CI runs every package at once): one that timed out on its way would keep the
	// count the test waits for short.
	t.Run("none comes free in time", func(t *testing.T) { burstBeyondUpstreamConns(t, "3s", 504) })
}

// burstBeyondUpstreamConns sends upstreamConns and 16 more requests at once to a route with
// timeout to an upstream that answers none until all of the first upstreamConns are in
// flight and 300 ms more have passed (the route's timeout and 500 ms more when want is a
// timeout), and wants every answer to be want.
func burstBeyondUpstreamConns(t *testing.T, timeout string, want int) {
	const extra = 16
	// Each request holds four descriptors in this process: the client's end, the gateway's,
	// and both ends of an upstream connection.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 4*(upstreamConns+extra)+512 {
		t.Skipf("the test needs %d open files, the process may have %d", 4*(upstreamConns+extra)+512, lim.Cur)
	}
	var inFlight atomic.Int32
	release := make(chan struct{})
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		inFlight.Add(1)
		<-release
		_, _ = io.WriteString(w, "ok")
	}))
	up.Config.ErrorLog = log.New(io.Discard, "", 0)
	up.Start()
	t.Cleanup(up.Close)
	// Cleanups run last first: a test that fails before the release releases the handlers,
	// or closing the upstream would wait for them for ever.
	var released sync.Once
	t.Cleanup(func() { released.Do(func() { close(release) }) })
	e := startOpenRoute(t, up.URL, "max_conns_per_ip = 4000", `timeout = "`+timeout+`"`, nil)
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: upstreamConns + extra}}
	defer c.CloseIdleConnections()
	statuses := make(chan int, upstreamConns+extra)
	for range upstreamConns + extra {
		go func() {
			resp, err := c.Post(e.base+"/open", "application/json", strings.NewReader(`{}`))
			if err != nil {
				statuses <- 0
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	testutil.WaitFor(t, func() bool { return inFlight.Load() == upstreamConns })
	// The requests past the pool are at the gateway by now; an immediate refusal would have
	// answered them already.
	time.Sleep(300 * time.Millisecond)
	early := len(statuses)
	if want == 504 {
		d, err := time.ParseDuration(timeout)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(d + 500*time.Millisecond)
	}
	released.Do(func() { close(release) })
	got := map[int]int{}
	for range upstreamConns + extra {
		got[<-statuses]++
	}
	if got[want] != upstreamConns+extra || want == 200 && early != 0 {
		t.Fatalf("statuses %v (%d answered before the upstream freed a connection), want all %d %d", got, early, upstreamConns+extra, want)
	}
	if n := inFlight.Load(); want == 200 && n != upstreamConns+extra {
		t.Fatalf("the upstream got %d requests, want %d", n, upstreamConns+extra)
	}
}

// An upstream that closes its connection after each answer (Connection: close) does not
// close the client's: Connection is hop-by-hop, and the provider's connection to the
// gateway carries its next delivery.
func TestUpstreamConnectionCloseStaysOnItsHop(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		ctx.SetConnectionClose()
		ctx.SetBodyString("upstream ok")
	})
	e := startQueued(t, up.URL(), 100)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	for i := range 3 {
		body := `{"zen":"keep"}`
		req, err := http.NewRequest("POST", e.base+"/hooks/direct", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range signed(body, nextDelivery()) {
			req.Header.Set(k, v)
		}
		req.Header.Del("Connection") // signed's "keep-alive, X-Drop": HTTP/1.1 keeps alive anyway
		if err := req.Write(conn); err != nil {
			t.Fatalf("request %d on the same connection: %v", i, err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			t.Fatalf("answer %d on the same connection: %v", i, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "upstream ok" || resp.Close {
			t.Fatalf("answer %d: %d %q, Connection %q: want 200 with the connection kept", i, resp.StatusCode, b, resp.Header.Get("Connection"))
		}
	}
	if n := len(up.requests()); n != 3 {
		t.Fatalf("the upstream got %d requests, want 3", n)
	}
}

// An upstream that sends bytes after its answer, unasked, does not get them read as the
// answer to the next request on that connection: each request gets its own answer. Before
// the idle check, the second request was answered "stray" and the third with the second's
// answer.
func TestUpstreamStrayBytesAreNoOnesAnswer(t *testing.T) {
	e := startOpenRoute(t, startFaultUpstream(t).URL(), "", "", nil)
	for i := 1; i <= 3; i++ {
		want := fmt.Sprintf("ok%d", i)
		if r := e.do("POST", "/stray", []byte(`{}`), nil); r.Status != 200 || r.Body != want {
			t.Fatalf("request %d: %d %q, want its own answer %q", i, r.Status, r.Body, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
