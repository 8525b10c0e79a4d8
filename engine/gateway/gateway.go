package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/server"
	"github.com/hookwall/hookwall/engine/snapshot"
	"github.com/hookwall/hookwall/engine/state"
	"github.com/hookwall/hookwall/engine/state/memory"
)

// Options tune a Gateway beyond its config file.
type Options struct {
	Logger *slog.Logger
	Getenv func(string) (string, bool)
	// CacheDir holds compiled wasm; "" keeps it in memory.
	CacheDir string
	// Ready, if set, is called once the listeners accept connections.
	Ready func(g *Gateway)
	// Now is the clock of signature timestamp checks (tests); nil means time.Now.
	Now func() time.Time
}

// Gateway is a running hookwall.
type Gateway struct {
	path  string
	o     Options
	log   *slog.Logger
	host  *filter.Host
	snaps snapshot.Holder
	store state.Store
	dlog  *decisionlog.Logger
	srv   *server.Server

	mu     sync.Mutex // serialises reloads
	status Status

	publicAddr, adminAddr, sinkAddr net.Addr
}

// Status is what /-/status reports about loading.
type Status struct {
	Revision    string    `json:"revision"`
	LoadedAt    time.Time `json:"loaded_at"`
	LastAttempt time.Time `json:"last_attempt"`
	LastResult  string    `json:"last_result"` // "ok" | "error"
	LastError   string    `json:"last_error,omitempty"`
	Reloads     uint64    `json:"reloads"`
	Failures    uint64    `json:"failures"`
}

// New loads the config at path and builds the first snapshot. Nothing listens yet.
func New(ctx context.Context, path string, o Options) (*Gateway, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	g := &Gateway{path: path, o: o, log: o.Logger}
	g.host, err = filter.NewHost(ctx, o.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	snap, err := g.build(ctx, cfg, nil)
	if err != nil {
		_ = g.host.Close(ctx)
		return nil, err
	}
	g.store, err = openStore(cfg)
	if err != nil {
		snap.Release()
		_ = g.host.Close(ctx)
		return nil, err
	}
	g.dlog, err = decisionlog.Open(cfg.Log.Decisions)
	if err != nil {
		snap.Release()
		_ = g.store.Close()
		_ = g.host.Close(ctx)
		return nil, err
	}
	g.snaps.Swap(snap)
	now := time.Now()
	g.status = Status{Revision: snap.Revision, LoadedAt: now, LastAttempt: now, LastResult: "ok"}
	g.srv = server.New(&cfg.Server, server.Options{
		Snapshots: &g.snaps, Store: g.store, FailOpen: cfg.State.FailMode == "open",
		Log: g.dlog, Logger: g.log, TLS: tlsCfg,
	})
	return g, nil
}

func openStore(cfg *config.Config) (state.Store, error) {
	switch cfg.State.Backend {
	case "memory":
		return memory.New(memory.Options{MaxKeys: cfg.State.MaxKeys}), nil
	}
	return nil, fmt.Errorf("%s: state.backend %q is not available in this build", cfg.File, cfg.State.Backend)
}

func (g *Gateway) build(ctx context.Context, cfg *config.Config, live *snapshot.Snapshot) (*snapshot.Snapshot, error) {
	o := snapshot.Options{Host: g.host, Getenv: g.o.Getenv, Logger: g.log, Now: g.o.Now}
	if live != nil {
		o.Reuse = live.Filters
	}
	return snapshot.Build(ctx, cfg, o)
}

// Snapshot returns the live snapshot (no reference; read-only use).
func (g *Gateway) Snapshot() *snapshot.Snapshot { return g.snaps.Load() }

// Status returns the load status.
func (g *Gateway) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.status
}

// Reload re-reads the config file and everything it names, and swaps the new snapshot in
// when it is fully valid. It returns the new revision, or the error (the old snapshot keeps
// serving).
func (g *Gateway) Reload(ctx context.Context) (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.status.LastAttempt = time.Now()
	rev, err := g.reload(ctx)
	if err != nil {
		g.status.LastResult, g.status.LastError = "error", err.Error()
		g.status.Failures++
		g.log.Error("reload failed; the previous snapshot keeps serving", "revision", g.status.Revision, "err", err)
		return "", err
	}
	g.status.Reloads++
	g.status.LastResult, g.status.LastError = "ok", ""
	if rev != g.status.Revision {
		g.status.Revision, g.status.LoadedAt = rev, time.Now()
	}
	g.log.Info("reloaded", "revision", rev)
	return rev, nil
}

func (g *Gateway) reload(ctx context.Context) (string, error) {
	cfg, err := config.Load(g.path)
	if err != nil {
		return "", err
	}
	live := g.snaps.Load()
	if err := restartOnly(live.Config, cfg); err != nil {
		return "", err
	}
	next, err := g.build(ctx, cfg, live)
	if err != nil {
		return "", err
	}
	g.snaps.Swap(next)
	return next.Revision, nil
}

// restartOnly refuses a change that a running gateway cannot apply.
func restartOnly(old, cur *config.Config) error {
	var keys []string
	if !reflect.DeepEqual(old.Server, cur.Server) {
		keys = append(keys, "[server]")
	}
	if old.Admin != cur.Admin {
		keys = append(keys, "[admin]")
	}
	if !reflect.DeepEqual(old.State, cur.State) {
		keys = append(keys, "[state]")
	}
	if old.Log != cur.Log {
		keys = append(keys, "[log]")
	}
	if len(keys) > 0 {
		return fmt.Errorf("%s: %v changed: these need a restart; nothing of this change was applied", cur.File, keys)
	}
	return nil
}

// Run serves until ctx ends, then stops accepting, drains in-flight requests (up to
// drainTimeout) and releases everything.
func (g *Gateway) Run(ctx context.Context, drainTimeout time.Duration) error {
	cfg := g.snaps.Load().Config
	var lc net.ListenConfig
	pub, err := lc.Listen(ctx, "tcp", cfg.Server.Listen)
	if err != nil {
		g.close()
		return fmt.Errorf("server.listen: %w", err)
	}
	adm, err := lc.Listen(ctx, "tcp", cfg.Admin.Listen)
	if err != nil {
		pub.Close()
		g.close()
		return fmt.Errorf("admin.listen: %w", err)
	}
	g.publicAddr, g.adminAddr = pub.Addr(), adm.Addr()
	admin := newAdmin(g, cfg.Admin.Token)
	errc := make(chan error, 3)
	var sink *fasthttp.Server
	if cfg.Demo.Sink != "" {
		sln, err := lc.Listen(ctx, "tcp", cfg.Demo.Sink)
		if err != nil {
			pub.Close()
			adm.Close()
			g.close()
			return fmt.Errorf("demo.sink: %w", err)
		}
		g.sinkAddr = sln.Addr()
		sink = newSink()
		go func() { _ = serveSink(sln, sink) }()
	}
	go func() { errc <- g.srv.Serve(pub) }()
	go func() { errc <- admin.Serve(adm) }()
	g.log.Info("hookwall is serving", "listen", pub.Addr().String(), "admin", adm.Addr().String(), "revision", g.snaps.Load().Revision, "routes", len(g.snaps.Load().Routes))
	if g.o.Ready != nil {
		g.o.Ready(g)
	}
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	g.log.Info("shutting down: draining in-flight requests")
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := g.srv.Shutdown(dctx); err != nil {
		runErr = errors.Join(runErr, err)
	}
	_ = admin.Shutdown(dctx)
	if sink != nil {
		_ = sink.ShutdownWithContext(dctx)
	}
	g.close()
	return runErr
}

func (g *Gateway) close() {
	g.snaps.Close()
	if g.store != nil {
		_ = g.store.Close()
	}
	_ = g.dlog.Close()
	_ = g.host.Close(context.Background())
}

// Addrs returns the bound public and admin addresses once Run has started.
func (g *Gateway) Addrs() (public, admin net.Addr) { return g.publicAddr, g.adminAddr }

// Check loads the config and builds a snapshot exactly as a start or reload would, then
// releases it. It returns the revision, or every error found.
func Check(ctx context.Context, path string, o Options) (string, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cfg, err := config.Load(path)
	if err != nil {
		return "", err
	}
	if _, err := serverTLS(cfg); err != nil {
		return "", err
	}
	host, err := filter.NewHost(ctx, o.CacheDir)
	if err != nil {
		return "", fmt.Errorf("gateway: %w", err)
	}
	defer host.Close(ctx)
	g := &Gateway{o: o, log: o.Logger, host: host}
	snap, err := g.build(ctx, cfg, nil)
	if err != nil {
		return "", err
	}
	defer snap.Release()
	return snap.Revision, nil
}
