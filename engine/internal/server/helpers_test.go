package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

func signGitHub(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// startUpstream serves "ok" to every request on a loopback listener and returns its address.
func startUpstream(tb testing.TB) string {
	tb.Helper()
	return startUpstreamHandler(tb, func(c *fasthttp.RequestCtx) { c.SetBodyString("ok") })
}

// startUpstreamHandler serves h on a loopback listener, until the test ends, and returns its
// address.
func startUpstreamHandler(tb testing.TB, h fasthttp.RequestHandler) string {
	tb.Helper()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	upSrv := &fasthttp.Server{Handler: h}
	go upSrv.Serve(up) //nolint:errcheck
	tb.Cleanup(func() { _ = upSrv.Shutdown() })
	return up.Addr().String()
}

// openPolicyDir returns a fresh directory whose policies/ holds routes.open, a policy that
// allows every request: the config beside it sets [policies] dir = "policies".
func openPolicyDir(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	testutil.WriteFile(tb, filepath.Join(dir, "policies", "open.rego"), "package routes.open\n\nallow := true\n")
	return dir
}

// startOpenRoute serves one route, "open", at path, allowing every request (routes.open)
// and forwarding it to the upstream at upAddr, and returns the server's address.
func startOpenRoute(tb testing.TB, path, upAddr string) string {
	tb.Helper()
	return startOpenRouteIn(tb, openPolicyDir(tb), path, "http://"+upAddr, "")
}

// startOpenRouteIn is startOpenRoute in dir (which has policies/ with routes.open), to the
// upstream URL, with extra keys for the route.
func startOpenRouteIn(tb testing.TB, dir, path, upstream, extra string) string {
	tb.Helper()
	_, addr := startServer(tb, filepath.Join(dir, "gateway.toml"), `
[policies]
dir = "policies"
[[route]]
name = "open"
path = "`+path+`"
upstream = "`+upstream+`"
policy = "routes.open"
`+extra+"\n", nil)
	return addr
}

// startServer serves the config cfgText (read as the file path) with a decision log and
// quiet logs, the options changed by opt (nil: none), on a loopback listener, and returns
// the server and its address.
func startServer(tb testing.TB, path, cfgText string, opt func(cfg *config.Config, o *Options)) (*Server, string) {
	tb.Helper()
	// Loopback TCP, not an in-memory pipe: the policy reads the client IP.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return startServerOn(tb, ln, path, cfgText, opt), ln.Addr().String()
}

// startServerOn is startServer on ln.
func startServerOn(tb testing.TB, ln net.Listener, path, cfgText string, opt func(cfg *config.Config, o *Options)) *Server {
	tb.Helper()
	cfg, err := config.Parse(path, []byte(cfgText))
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	host, err := filter.NewHost(ctx, "")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { host.Close(ctx) })
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	snap, err := snapshot.Build(ctx, cfg, snapshot.Options{Host: host, Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	var holder snapshot.Holder
	holder.Swap(snap)
	tb.Cleanup(holder.Close)
	dlog := decisionlog.New(io.Discard, nil, decisionlog.Options{})
	tb.Cleanup(func() { dlog.Close() })
	o := Options{Snapshots: &holder, Log: dlog, Logger: quiet,
		Limits: Limits{MaxBody: int(cfg.Server.MaxBody), MaxHeader: int(cfg.Server.MaxHeader)}}
	if opt != nil {
		opt(cfg, &o)
	}
	srv := New(o)
	go srv.Serve(ln) //nolint:errcheck
	tb.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv
}
