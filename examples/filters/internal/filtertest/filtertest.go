// Package filtertest runs a compiled filter (.wasm) through the gateway's
// WASM host, engine/filter, with the request and result types of
// sdk/sdktest, so an example's test table runs unchanged against the native
// harness and against the real wasm module.
//
// It is test support: every function takes a testing.TB and fails the test
// on setup errors.
package filtertest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/sdk"
	"github.com/hookwall/hookwall/sdk/sdktest"
	"github.com/valyala/fasthttp"
)

// Runner is what both sdktest.Filter and Wasm offer.
type Runner interface {
	Do(req *sdktest.Request) (*sdktest.Result, error)
	RoundTrip(req *sdktest.Request, upstream *sdktest.Response, isError bool) (*sdktest.Result, error)
}

var _ Runner = (*sdktest.Filter)(nil)

// NewHost returns a filter host closed when the test ends. Compiling a
// standard-Go module takes seconds, so hosts share wazero's on-disk
// compilation cache in the system temp directory (safe across processes:
// wazero writes entries by rename); HOOKWALL_TEST_WASM_CACHE overrides it.
func NewHost(tb testing.TB) *filter.Host {
	tb.Helper()
	dir := os.Getenv("HOOKWALL_TEST_WASM_CACHE")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "hookwall-test-wazero-cache")
	}
	h, err := filter.NewHost(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := h.Close(context.Background()); err != nil {
			tb.Errorf("close filter host: %v", err)
		}
	})
	return h
}

// Wasm is a loaded filter. Safe for concurrent use.
type Wasm struct {
	f    *filter.Filter
	logs *logSink
}

// Option changes the spec Load uses.
type Option func(*filter.Spec)

// NoDeadline loads the filter without a per-call deadline (timeout = "0").
func NoDeadline(s *filter.Spec) { s.Timeout = filter.NoDeadline }

// Load loads the module at path with config. Calls get a generous deadline:
// these tests check behaviour, not latency, on a possibly busy machine.
func Load(tb testing.TB, h *filter.Host, path, config string, opts ...Option) *Wasm {
	tb.Helper()
	f, err := TryLoad(h, path, config, opts...)
	if err != nil {
		tb.Fatalf("load %s: %v", path, err)
	}
	tb.Cleanup(func() { _ = f.f.Close(context.Background()) })
	return f
}

// TryLoad is Load returning the error, for tests of rejected configs; the
// error ends with what the guest wrote to stderr, where a Go guest's panic
// message is. A successful load is closed with the host.
func TryLoad(h *filter.Host, path, config string, opts ...Option) (*Wasm, error) {
	mod, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sink := &logSink{}
	spec := filter.Spec{
		Name:    "test",
		Module:  mod,
		Config:  []byte(config),
		Timeout: 10 * time.Second,
		Pool:    1,
		Logger:  slog.New(sink),
	}
	for _, o := range opts {
		o(&spec)
	}
	f, err := h.Load(context.Background(), spec)
	if err != nil {
		return nil, fmt.Errorf("%w; guest stderr: %s", err, sink.stderrText())
	}
	return &Wasm{f: f, logs: sink}, nil
}

// Filter returns the loaded filter.
func (w *Wasm) Filter() *filter.Filter { return w.f }

// Do runs the request phase, like sdktest.Filter.Do.
func (w *Wasm) Do(req *sdktest.Request) (*sdktest.Result, error) {
	return w.run(req, nil, false)
}

// RoundTrip runs both phases, like sdktest.Filter.RoundTrip.
func (w *Wasm) RoundTrip(req *sdktest.Request, upstream *sdktest.Response, isError bool) (*sdktest.Result, error) {
	if upstream == nil {
		return nil, sdktest.ErrNoUpstream
	}
	return w.run(req, upstream, isError)
}

func (w *Wasm) run(r *sdktest.Request, upstream *sdktest.Response, isError bool) (*sdktest.Result, error) {
	ctx := context.Background()
	inst, err := w.f.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer inst.Release()

	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	toFast(r, req)
	labels := map[string]string{}
	ex := &filter.Exchange{
		Req: req, Resp: resp,
		Route:      or(r.Route, "test"),
		RemoteAddr: or(r.SourceAddr, "127.0.0.1:50000"),
		Scheme:     "http",
		SetLabel:   func(k, v string) { labels[k] = v },
	}
	w.logs.start()
	next, err := inst.HandleRequest(ctx, ex)
	if err != nil {
		return nil, err
	}
	if next && upstream != nil {
		resp.SetStatusCode(or(upstream.Status, 200))
		for _, n := range upstream.Header.Names() {
			for _, v := range upstream.Header.Values(n) {
				resp.Header.Add(n, v)
			}
		}
		resp.SetBody(upstream.Body)
		if err := inst.HandleResponse(ctx, ex, isError); err != nil {
			return nil, err
		}
	}
	res := &sdktest.Result{
		Next:      next,
		Forwarded: fromFast(req),
		Response:  sdktest.Response{Status: resp.StatusCode(), Body: append([]byte(nil), resp.Body()...)},
		Labels:    labels,
		Logs:      w.logs.take(),
	}
	for k, v := range resp.Header.All() {
		res.Response.Header.Add(string(k), string(v))
	}
	return res, nil
}

func toFast(r *sdktest.Request, req *fasthttp.Request) {
	req.Header.SetMethod(or(r.Method, "POST"))
	req.SetRequestURI(or(r.URI, "/"))
	req.Header.SetProtocol(or(r.Proto, "HTTP/1.1"))
	req.SetBody(r.Body)
	for _, n := range r.Header.Names() {
		for _, v := range r.Header.Values(n) {
			req.Header.Add(n, v)
		}
	}
	// As the gateway reads a request from the wire: a Content-Length for a body, or for a
	// method that may have one, unless the request declares its framing itself.
	if !r.Header.Has("Content-Length") && !r.Header.Has("Transfer-Encoding") && (len(r.Body) > 0 || !req.Header.IsGet() && !req.Header.IsHead()) {
		req.Header.SetContentLength(len(r.Body))
	}
}

func fromFast(req *fasthttp.Request) *sdktest.Request {
	out := &sdktest.Request{
		Method: string(req.Header.Method()),
		URI:    string(req.Header.RequestURI()),
		Proto:  string(req.Header.Protocol()),
		Body:   append([]byte(nil), req.Body()...),
	}
	for k, v := range req.Header.All() {
		out.Header.Add(string(k), string(v))
	}
	if out.Header.Has("Content-Length") {
		// What the upstream gets: fasthttp frames the forwarded body itself.
		out.Header.Set("Content-Length", strconv.Itoa(len(out.Body)))
	}
	return out
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// logSink collects guest log messages (records with source=guest) and the
// guest's stderr (records with an output attribute).
type logSink struct {
	mu     sync.Mutex
	logs   []sdktest.LogEntry
	stderr []byte
}

func (s *logSink) stderrText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.stderr)
}

func (s *logSink) start() {
	s.mu.Lock()
	s.logs = nil
	s.mu.Unlock()
}

func (s *logSink) take() []sdktest.LogEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.logs
	s.logs = nil
	return l
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }

func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	guest := false
	r.Attrs(func(a slog.Attr) bool {
		switch {
		case a.Key == "source" && a.Value.String() == "guest":
			guest = true
		case a.Key == "output":
			s.mu.Lock()
			s.stderr = append(s.stderr, a.Value.String()...)
			s.mu.Unlock()
		}
		return true
	})
	if !guest {
		return nil
	}
	lvl := sdk.LevelError
	switch {
	case r.Level < slog.LevelInfo:
		lvl = sdk.LevelDebug
	case r.Level < slog.LevelWarn:
		lvl = sdk.LevelInfo
	case r.Level < slog.LevelError:
		lvl = sdk.LevelWarn
	}
	s.mu.Lock()
	s.logs = append(s.logs, sdktest.LogEntry{Level: lvl, Msg: r.Message})
	s.mu.Unlock()
	return nil
}

func (s *logSink) WithAttrs([]slog.Attr) slog.Handler { return s }

func (s *logSink) WithGroup(string) slog.Handler { return s }

// Bench measures one request through the filter as the gateway runs it:
// Acquire, HandleRequest, Release, with the request copied fresh for each
// iteration (the copy is part of the figure; it is small next to a call).
// Besides ns/op it reports cpu-ns/op, the process CPU time per request,
// which a loaded machine does not inflate. It fails the benchmark when the
// filter's verdict is not wantNext.
func (w *Wasm) Bench(b *testing.B, r *sdktest.Request, wantNext bool) {
	b.Helper()
	ctx := context.Background()
	tmpl := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(tmpl)
	toFast(r, tmpl)
	var req fasthttp.Request
	var resp fasthttp.Response
	ex := &filter.Exchange{
		Req: &req, Resp: &resp,
		Route: or(r.Route, "test"), RemoteAddr: or(r.SourceAddr, "127.0.0.1:50000"), Scheme: "http",
		SetLabel: func(string, string) {},
	}
	b.SetBytes(int64(len(r.Body)))
	b.ReportAllocs()
	cpu0, cpuOK := processCPU()
	n := 0
	for b.Loop() {
		n++
		tmpl.CopyTo(&req)
		resp.Reset()
		inst, err := w.f.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		next, err := inst.HandleRequest(ctx, ex)
		inst.Release()
		if err != nil {
			b.Fatal(err)
		}
		if next != wantNext {
			b.Fatalf("next = %v, want %v", next, wantNext)
		}
	}
	if cpu1, ok := processCPU(); ok && cpuOK && n > 0 {
		b.ReportMetric(float64(cpu1-cpu0)/float64(n), "cpu-ns/op")
	}
}

// PushPayload returns a GitHub push event shaped body of about 7 KiB with
// commit authors' e-mail addresses: a typical webhook for benchmarks.
func PushPayload() []byte {
	var b strings.Builder
	b.WriteString(`{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"0000000000000000000000000000000000000000",`)
	b.WriteString(`"repository":{"id":186853002,"node_id":"MDEwOlJlcG9zaXRvcnkxODY4NTMwMDI=","name":"hello-world","full_name":"octo/hello-world","private":false,`)
	b.WriteString(`"owner":{"name":"octo","email":"octo@example.com","login":"octo","id":21031067,"type":"User","site_admin":false},`)
	b.WriteString(`"html_url":"https://github.com/octo/hello-world","description":null,"fork":false,"created_at":1557933565,"pushed_at":1557933657,"default_branch":"main"},`)
	b.WriteString(`"pusher":{"name":"octo","email":"octo@example.com"},"sender":{"login":"octo","id":21031067,"type":"User","site_admin":false},"commits":[`)
	for i := range 12 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"%040d","tree_id":"%040d","distinct":true,"message":"Change %d: update the handler and its tests\n\nSigned-off-by: Dev %d <dev%d@example.org>",`, i, i+1, i, i, i)
		fmt.Fprintf(&b, `"timestamp":"2024-05-15T15:20:%02d+02:00","url":"https://github.com/octo/hello-world/commit/%040d",`, i, i)
		fmt.Fprintf(&b, `"author":{"name":"Dev %d","email":"dev%d@example.org","username":"dev%d"},"committer":{"name":"GitHub","email":"noreply@github.com","username":"web-flow"},`, i, i, i)
		b.WriteString(`"added":[],"removed":[],"modified":["README.md","src/handler.go"]}`)
	}
	b.WriteString(`],"head_commit":null,"compare":"https://github.com/octo/hello-world/compare/6113728f27ae...000000000000"}`)
	return []byte(b.String())
}

// Both returns the filter in module configured with config twice: in the native harness
// (sdktest) and as the committed module loaded by the gateway's host, so one table of cases
// runs against both and shows they give the same answers.
func Both(t *testing.T, module, config string) map[string]Runner {
	t.Helper()
	native, err := sdktest.New(config)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]Runner{
		"harness": native,
		"wasm":    Load(t, NewHost(t), module, config),
	}
}

// RejectsBadConfigs checks that the gateway refuses module at load for every config in bad,
// with the filter's own message (want) in the error, before any request.
func RejectsBadConfigs(t *testing.T, module, want string, bad []string) {
	t.Helper()
	h := NewHost(t)
	for _, cfg := range bad {
		_, err := TryLoad(h, module, cfg)
		if err == nil {
			t.Errorf("config %q loaded", cfg)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: error does not carry the filter's message: %v", cfg, err)
		}
	}
}
