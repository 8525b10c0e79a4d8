package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// upstream is a real fasthttp server on loopback that records what reached it.
type upstream struct {
	t    testing.TB
	ln   net.Listener
	srv  *fasthttp.Server
	mu   sync.Mutex
	reqs []recorded
	// handler, when set, answers instead of the default 200.
	handler func(ctx *fasthttp.RequestCtx)
}

type recorded struct {
	Method, URI string
	Header      http.Header
	Body        []byte
}

func startUpstream(t testing.TB) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{t: t, ln: ln}
	u.srv = &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		r := recorded{Method: string(ctx.Method()), URI: string(ctx.RequestURI()), Header: http.Header{}, Body: append([]byte(nil), ctx.PostBody()...)}
		for k, v := range ctx.Request.Header.All() {
			r.Header.Add(string(k), string(v))
		}
		u.mu.Lock()
		u.reqs = append(u.reqs, r)
		h := u.handler
		u.mu.Unlock()
		if h != nil {
			h(ctx)
			return
		}
		ctx.SetStatusCode(200)
		ctx.SetBodyString("upstream ok")
	}, DisableHeaderNamesNormalizing: true}
	go u.srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = u.srv.Shutdown() })
	return u
}

func (u *upstream) URL() string { return "http://" + u.ln.Addr().String() }

func (u *upstream) requests() []recorded {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]recorded(nil), u.reqs...)
}

func (u *upstream) setHandler(h func(ctx *fasthttp.RequestCtx)) {
	u.mu.Lock()
	u.handler = h
	u.mu.Unlock()
}

// env is a running gateway built from a config written into a temp dir.
type env struct {
	t      testing.TB
	dir    string
	g      *Gateway
	base   string // http://public
	admin  string // http://admin
	logBuf *testutil.Buffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startEnv writes files (relative path → content) and gateway.toml, then runs a gateway.
// In the config, {{UPSTREAM}} and {{DIR}} are replaced.
func startEnv(t testing.TB, cfg string, files map[string]string, o Options) *env {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg = strings.ReplaceAll(cfg, "{{DIR}}", dir)
	path := filepath.Join(dir, "gateway.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logBuf := &testutil.Buffer{}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	g, err := New(ctx, path, o)
	if err != nil {
		cancel()
		t.Fatalf("gateway.New: %v", err)
	}
	ready := make(chan struct{})
	o.Ready = func(*Gateway) { close(ready) }
	g.o.Ready = o.Ready
	e := &env{t: t, dir: dir, g: g, logBuf: logBuf, cancel: cancel, done: make(chan error, 1)}
	// fasthttp counts a connection that has not sent a request yet as idle (closable on
	// shutdown) only 5 s after it was accepted, and an HTTP client may open a spare one at
	// any time: the drain must outlast that.
	go func() { e.done <- g.Run(ctx, 10*time.Second) }()
	select {
	case <-ready:
	case err := <-e.done:
		t.Fatalf("gateway.Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("gateway did not become ready")
	}
	pub, adm := g.Addrs()
	e.base, e.admin = "http://"+pub.String(), "http://"+adm.String()
	t.Cleanup(e.stop)
	return e
}

func (e *env) stop() {
	e.once.Do(func() {
		e.cancel()
		select {
		case err := <-e.done:
			if err != nil {
				e.t.Errorf("gateway.Run: %v", err)
			}
		case <-time.After(20 * time.Second):
			e.t.Error("gateway did not stop")
		}
	})
}

type resp struct {
	Status int
	Header http.Header
	Body   string
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: false, MaxIdleConnsPerHost: 64}}

func (e *env) do(method, path string, body []byte, headers map[string]string) resp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	r, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{Status: r.StatusCode, Header: r.Header, Body: string(b)}
}

func githubSig(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

var deliverySeq struct {
	sync.Mutex
	n int
}

func nextDelivery() string {
	deliverySeq.Lock()
	defer deliverySeq.Unlock()
	deliverySeq.n++
	return fmt.Sprintf("delivery-%d-%d", time.Now().UnixNano(), deliverySeq.n)
}

func startUpstreamB(b *testing.B) string { return startUpstream(b).URL() }

func startEnvB(b *testing.B, cfg string, files map[string]string) *env {
	return startEnv(b, cfg, files, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// quietHead is the head of a test config: both listeners on free loopback ports, the
// policies under {{DIR}}/policies, no decision log.
const quietHead = `
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[policies]
dir = "{{DIR}}/policies"
[log]
decisions = "off"
`

// absPath is rel, relative to this package's directory, made absolute (a config is read
// from a temporary directory).
func absPath(t testing.TB, rel string) string {
	t.Helper()
	a, err := filepath.Abs(filepath.FromSlash(rel))
	if err != nil {
		t.Fatal(err)
	}
	return a
}
