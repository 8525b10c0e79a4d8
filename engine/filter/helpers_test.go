package filter

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

var testCtx = context.Background()

// refDir returns the module cache directory of the http-wasm reference host,
// whose prebuilt guests the tests read (never copied into this repo).
var refDir = sync.OnceValues(func() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/http-wasm/http-wasm-host-go").Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
})

func refGuest(t testing.TB, rel string) []byte {
	t.Helper()
	dir, err := refDir()
	if err != nil {
		t.Fatalf("locate http-wasm-host-go: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newHost(t testing.TB) *Host {
	t.Helper()
	h, err := NewHost(testCtx, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(testCtx); err != nil {
			t.Errorf("close host: %v", err)
		}
	})
	return h
}

// load loads spec. Tests that are not about deadlines get a generous one:
// the machine running them may be busy, and a starved 50ms call is not
// what they test.
func load(t testing.TB, h *Host, spec Spec) *Filter {
	t.Helper()
	if spec.Timeout == 0 {
		spec.Timeout = 10 * time.Second
	}
	f, err := h.Load(testCtx, spec)
	if err != nil {
		t.Fatalf("load %s: %v", spec.Name, err)
	}
	t.Cleanup(func() { _ = f.Close(testCtx) })
	return f
}

// serve runs ex through f as one request does: handle_request, then handle_response, on an
// instance acquired from the pool and released after.
func serve(t testing.TB, f *Filter, ex *Exchange) {
	inst, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := inst.HandleRequest(testCtx, ex); err != nil {
		t.Fatal(err)
	}
	if err := inst.HandleResponse(testCtx, ex, false); err != nil {
		t.Fatal(err)
	}
	inst.Release()
}

// answered runs ex through f as serve does, but wants handle_request to call next, gives
// the response the body "from upstream" as the upstream's answer, and returns
// handle_response's error.
func answered(t testing.TB, f *Filter, ex *Exchange, resp *fasthttp.Response) error {
	t.Helper()
	inst, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Release()
	if next, err := inst.HandleRequest(testCtx, ex); err != nil || !next {
		t.Fatalf("next=%v err=%v", next, err)
	}
	resp.SetBodyString("from upstream")
	return inst.HandleResponse(testCtx, ex, false)
}

func newLogger(level slog.Level) (*slog.Logger, *testutil.Buffer) {
	buf := &testutil.Buffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: level})), buf
}

// newExchange builds a request as fasthttp would parse it from the wire.
func newExchange(t testing.TB, raw string) (*Exchange, *fasthttp.Request, *fasthttp.Response) {
	t.Helper()
	req := &fasthttp.Request{}
	if err := req.ReadLimitBody(bufioReader(raw), 1<<20); err != nil {
		t.Fatalf("parse request: %v", err)
	}
	resp := &fasthttp.Response{}
	return &Exchange{Req: req, Resp: resp, Route: "test", RemoteAddr: "127.0.0.1:4242", Scheme: "http"}, req, resp
}

// gateway is a minimal fasthttp gateway on 127.0.0.1 that runs one filter
// the way engine/internal/server will: acquire, handle_request, forward when the
// guest says next, handle_response, release.
type gateway struct {
	t        testing.TB
	f        *Filter
	url      string
	upstream *fasthttp.HostClient // nil: answer 200 with an empty body

	mu     sync.Mutex
	errs   []error
	labels map[string]string
	seen   map[string]bool // x-httpwasm-tck-testid values
}

func startGateway(t testing.TB, f *Filter, upstreamAddr string) *gateway {
	t.Helper()
	g := &gateway{t: t, f: f, labels: map[string]string{}, seen: map[string]bool{}}
	if upstreamAddr != "" {
		g.upstream = &fasthttp.HostClient{
			Addr: upstreamAddr,
			// Keep the URI exactly as the guest set it.
			DisablePathNormalizing: true,
			ReadTimeout:            5 * time.Second,
			WriteTimeout:           5 * time.Second,
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler:                       g.handle,
		DisableHeaderNamesNormalizing: false,
		ReadTimeout:                   5 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	g.url = "http://" + ln.Addr().String()
	return g
}

func (g *gateway) errors() []error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]error(nil), g.errs...)
}

func (g *gateway) fail(rc *fasthttp.RequestCtx, err error) {
	g.mu.Lock()
	g.errs = append(g.errs, err)
	g.mu.Unlock()
	status := fasthttp.StatusInternalServerError
	var fe *Error
	if errors.As(err, &fe) && fe.Kind == KindPool {
		status = fasthttp.StatusServiceUnavailable
	}
	rc.Response.Reset()
	rc.SetStatusCode(status)
	rc.SetBodyString("filter error")
}

func (g *gateway) handle(rc *fasthttp.RequestCtx) {
	ctx := context.Background()
	if id := rc.Request.Header.Peek("x-httpwasm-tck-testid"); len(id) > 0 {
		g.mu.Lock()
		g.seen[string(id)] = true
		g.mu.Unlock()
	}
	inst, err := g.f.Acquire(ctx)
	if err != nil {
		g.fail(rc, err)
		return
	}
	defer inst.Release()
	ex := &Exchange{
		Req:    &rc.Request,
		Resp:   &rc.Response,
		Route:  "tck",
		Source: rc.RemoteAddr(), // formatted only if the guest asks (get_source_addr)
		Scheme: "http",
		SetLabel: func(k, v string) {
			g.mu.Lock()
			g.labels[k] = v
			g.mu.Unlock()
		},
	}
	next, err := inst.HandleRequest(ctx, ex)
	if err != nil {
		g.fail(rc, err)
		return
	}
	if !next {
		return
	}
	upErr := g.forward(rc)
	if err := inst.HandleResponse(ctx, ex, upErr != nil); err != nil {
		g.fail(rc, err)
	}
}

// forward sends the (possibly changed) request upstream and merges the
// answer into the response, keeping headers the guest set before next.
func (g *gateway) forward(rc *fasthttp.RequestCtx) error {
	if g.upstream == nil {
		return nil
	}
	up := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(up)
	if err := g.upstream.Do(&rc.Request, up); err != nil {
		rc.SetStatusCode(fasthttp.StatusBadGateway)
		return err
	}
	MergeResponse(&rc.Response, up)
	return nil
}

// upstream is a fasthttp server on 127.0.0.1 that records what reached it
// and answers with its configured status and body.
type upstream struct {
	addr string

	mu     sync.Mutex
	last   *fasthttp.Request
	status int
	body   string
	echo   bool // answer with the request path instead of body
}

func startUpstream(t testing.TB) *upstream {
	t.Helper()
	u := &upstream{status: 200}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: u.handle, DisablePreParseMultipartForm: true}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	u.addr = ln.Addr().String()
	return u
}

func (u *upstream) handle(rc *fasthttp.RequestCtx) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.last = &fasthttp.Request{}
	rc.Request.CopyTo(u.last)
	rc.SetStatusCode(u.status)
	if u.echo {
		rc.SetBody(rc.Path())
		return
	}
	rc.SetBodyString(u.body)
}

func (u *upstream) set(status int, body string, echo bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.status, u.body, u.echo, u.last = status, body, echo, nil
}

// lastRequest returns a copy of the last request that reached the upstream.
func (u *upstream) lastRequest() *fasthttp.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }
