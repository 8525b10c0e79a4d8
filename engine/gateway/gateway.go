package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/internal/server"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/state"
	"github.com/hookwall/hookwall/engine/tlsconf"
	"github.com/hookwall/hookwall/engine/watch"
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
	store *state.Bounded // the [state] backend, keys bounded (state.go)
	dlog  *decisionlog.Logger
	srv   *server.Server
	obs   *observability // metrics, recent decisions, request rates (metrics.go)
	// tls and adminTLS are the public and admin listeners' TLS (tls.go), nil for plain HTTP;
	// a reload renews their files.
	tls, adminTLS *tlsconf.Listener
	// draining is set when Run begins to shut down: the public listener is closing.
	draining atomic.Bool
	// sources is the [watch] watcher (sources.go), nil when watching is off.
	sources *watch.Watcher
	// deliveries stores and delivers queued routes' requests; nil when no route is queued.
	deliveries *delivery.Dispatcher
	// depth answers the store's depth to the status page and the metrics (delivery.go).
	depth *depthCache
	// destClients are the pools of queued routes' destinations (delivery.go).
	destClients destClients
	// targets are the queued routes' delivery targets of the live snapshot (delivery.go).
	targets targetCache
	// sealKeys are the [delivery] encryption_keys the keyring was made with at start: the
	// decision log and the delivery store seal with it for the process's life (sealKeysKept).
	sealKeys []delivery.Key

	mu     sync.Mutex // serialises reloads; guards the fields below
	status Status
	// bundle is the OPA bundle source when [policies] bundle_url is set.
	bundle *bundleSource
	// watchCfg is the newest config that parsed, applied or not: its files are watched, so a
	// fix to a refused change is picked up too.
	watchCfg *config.Config
	watch    *watcher
	// bgCtx is set while Run runs: file watches and bundle polls live under it.
	bgCtx context.Context
	bgWG  sync.WaitGroup

	publicAddr, adminAddr, sinkAddr net.Addr
}

// ReloadResult is the outcome of the last reload attempt (Status.LastResult).
type ReloadResult string

// ReloadResult values.
const (
	ReloadOK    ReloadResult = "ok"
	ReloadError ReloadResult = "error"
)

// Status is what /-/status reports about loading.
type Status struct {
	Revision    string       `json:"revision"`
	LoadedAt    time.Time    `json:"loaded_at"`
	LastAttempt time.Time    `json:"last_attempt"`
	LastResult  ReloadResult `json:"last_result"`
	LastError   string       `json:"last_error,omitempty"`
	// Reloads and Failures count reload attempts that applied and that were refused, from
	// every trigger (file watch, SIGHUP, POST /-/reload, bundle poll).
	Reloads  uint64 `json:"reloads"`
	Failures uint64 `json:"failures"`
	// Source is where policies come from: "dir" or "bundle".
	Source string        `json:"source"`
	Bundle *BundleStatus `json:"bundle,omitempty"`
	// Watching is the number of directories watched for changes (0: watch is off).
	Watching int `json:"watching"`
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
	tlsL, adminTLS, err := listenerTLS(cfg)
	if err != nil {
		return nil, err
	}
	g := &Gateway{path: path, o: o, log: o.Logger, watchCfg: cfg, tls: tlsL, adminTLS: adminTLS}
	g.host, err = filter.NewHost(ctx, o.CacheDir)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	// A gateway configured for a bundle starts only with one: it has no other policies.
	bsrc, brev, _, err := bundleFor(ctx, cfg, nil, nil)
	if err != nil {
		_ = g.host.Close(ctx)
		return nil, err
	}
	fail := func(err error, snap *snapshot.Snapshot) (*Gateway, error) {
		if snap != nil {
			snap.Release()
		}
		if bsrc != nil {
			bsrc.stop()
		}
		if g.store != nil {
			_ = g.store.Close()
		}
		if g.deliveries != nil {
			_ = g.deliveries.Store().Close()
		}
		_ = g.host.Close(ctx)
		return nil, err
	}
	snap, err := g.build(ctx, cfg, nil, brev)
	if err != nil {
		return fail(err, nil)
	}
	g.obs = newObservability(g)
	g.store, err = openStore(cfg, g.obs.stateObserver())
	if err != nil {
		return fail(err, snap)
	}
	kr, keys, err := deliveryKeyring(cfg, snap.Secrets)
	if err != nil {
		return fail(err, snap)
	}
	g.sealKeys = keys
	lo := decisionlog.Options{Mask: cfg.Log.Mask}
	if kr != nil { // a nil *Keyring would be a non-nil Sealer
		lo.Seal = kr
	}
	g.dlog, err = decisionlog.Open(cfg.Log.Decisions, lo)
	if err != nil {
		return fail(err, snap)
	}
	if g.deliveries, err = g.openDelivery(cfg, kr); err != nil {
		_ = g.dlog.Close()
		return fail(err, snap)
	}
	g.obs.attach(g.dlog)
	if bsrc != nil {
		bsrc.setCurrent(brev)
		g.bundle = bsrc
	}
	g.snaps.Swap(snap)
	if g.sources, err = g.newSourceWatcher(cfg); err != nil {
		g.snaps.Close()
		return fail(err, nil)
	}
	now := time.Now()
	g.status = Status{Revision: snap.Revision, LoadedAt: now, LastAttempt: now, LastResult: ReloadOK}
	so := server.Options{
		Snapshots: &g.snaps, Store: g.store, FailOpen: cfg.State.FailMode == config.FailOpen,
		Log: g.dlog, Logger: g.log, Observer: g.obs.metrics, Limits: serverLimits(&cfg.Server),
	}
	if tlsL != nil { // a nil *Listener has no Config
		so.TLS = tlsL.Config()
		if cfg.Server.ClientCA != "" {
			// A reload that removes a CA refuses its certificates on the connections opened before.
			so.ClientCAs = tlsL
		}
	}
	if g.sources != nil {
		so.Watch = g.sources
		g.obs.metrics.Registry().MustRegister(newWatchCollector(g.sources))
	}
	if g.deliveries != nil { // a nil *Dispatcher would be a non-nil Queue
		so.Queue = g.deliveries
	}
	g.srv = server.New(so)
	return g, nil
}

// build makes a snapshot of cfg, with policies from brev when set (else the policy dir),
// sharing live's unchanged filters. With test_on_reload the policy tests run first.
func (g *Gateway) build(ctx context.Context, cfg *config.Config, live *snapshot.Snapshot, brev *bundleRev) (*snapshot.Snapshot, error) {
	return g.buildWith(ctx, cfg, brev, snapshot.Options{Previous: live})
}

// buildWith is build with o's Previous and KeepInputs (a new bundle on the live snapshot's
// inputs: see snapshot.Options).
func (g *Gateway) buildWith(ctx context.Context, cfg *config.Config, brev *bundleRev, o snapshot.Options) (*snapshot.Snapshot, error) {
	if cfg.Policies.TestOnReload {
		var secrets *config.Secrets // read again, unless the live snapshot's are kept
		if o.KeepInputs {
			secrets = o.Previous.Secrets
		}
		if err := g.runPolicyTests(ctx, cfg, brev, secrets); err != nil {
			return nil, err
		}
	}
	o.Host, o.Getenv, o.Logger, o.Now = g.host, g.o.Getenv, g.log, g.o.Now
	if brev != nil {
		o.Policies = brev
	}
	snap, err := snapshot.Build(ctx, cfg, o)
	if err != nil {
		return nil, err
	}
	if err := checkSignKeys(snap); err != nil {
		snap.Release()
		return nil, err
	}
	return snap, nil
}

// Snapshot returns the live snapshot (no reference; read-only use).
func (g *Gateway) Snapshot() *snapshot.Snapshot { return g.snaps.Load() }

// Status returns the load status.
func (g *Gateway) Status() Status {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.status
	st.Source = "dir"
	if g.bundle != nil {
		st.Source, st.Bundle = "bundle", g.bundle.status()
	}
	if g.watch != nil {
		st.Watching = g.watch.watchCount()
	}
	return st
}

// Reload re-reads the config file and everything it names, and swaps the new snapshot in
// when it is fully valid. It returns the new revision, or the error (the old snapshot keeps
// serving).
func (g *Gateway) Reload(ctx context.Context) (string, error) {
	return g.reloadFrom(ctx, triggerReload)
}

// reloadTrigger is what started a reload attempt, logged with it.
type reloadTrigger string

const (
	triggerReload reloadTrigger = "reload" // SIGHUP or POST /-/reload
	triggerWatch  reloadTrigger = "watch"  // the file watch, with the files that changed
	triggerBundle reloadTrigger = "bundle" // the bundle poll
)

// reloadFrom is Reload for one trigger ("reload" for SIGHUP and the admin API, "watch" with
// the files that changed).
func (g *Gateway) reloadFrom(ctx context.Context, trigger reloadTrigger, files ...string) (string, error) {
	// A new bundle source's first download may take up to bundleFetchTimeout: it is made
	// before the lock, which the status, the admin API and the bundle poller need too.
	pre := g.prefetchBundle(ctx)
	g.mu.Lock()
	defer g.mu.Unlock()
	start := time.Now()
	rev, err := g.reloadLocked(ctx, pre)
	return g.recordLocked(trigger, start, rev, err, files...)
}

// recordLocked notes the outcome of one reload attempt in the status and the log. g.mu is held.
func (g *Gateway) recordLocked(trigger reloadTrigger, start time.Time, rev string, err error, files ...string) (string, error) {
	attrs := []any{"trigger", trigger}
	if len(files) > 0 {
		attrs = append(attrs, "files", files)
	}
	g.status.LastAttempt = start
	if err != nil {
		// A bundle server that keeps failing the same way is logged once, then at debug.
		level := slog.LevelError
		if trigger == triggerBundle && g.status.LastError == err.Error() {
			level = slog.LevelDebug
		}
		g.status.LastResult, g.status.LastError = ReloadError, err.Error()
		g.status.Failures++
		g.log.Log(context.Background(), level, "reload failed; the previous snapshot keeps serving", append(attrs, "revision", g.status.Revision, "err", err)...)
		return "", err
	}
	g.status.Reloads++
	g.status.LastResult, g.status.LastError = ReloadOK, ""
	if rev != g.status.Revision {
		g.status.Revision, g.status.LoadedAt = rev, time.Now()
	}
	g.log.Info("reloaded", append(attrs, "revision", rev, "took", time.Since(start).Round(time.Microsecond))...)
	return rev, nil
}

// reloadLocked builds and swaps in a snapshot of the config file. g.mu is held.
func (g *Gateway) reloadLocked(ctx context.Context, pre *prefetched) (string, error) {
	if pre != nil {
		defer pre.release() // unless bundleFor took its source
	}
	cfg, err := config.Load(g.path)
	if err != nil {
		return "", err
	}
	g.watchCfg = cfg
	// Watched files follow the newest parsed config even when it is refused: a filter module
	// it names that does not exist yet reloads the gateway when it appears. Whether to watch
	// at all is the serving snapshot's word (syncWatchLocked).
	defer g.syncWatchLocked()
	live := g.snaps.Load()
	if err := restartOnly(live.Config, cfg); err != nil {
		return "", err
	}
	// The listener's TLS files are re-read at every reload: replaced contents (a renewed
	// certificate, a CA removed from client_ca) apply with the snapshot, or fail the reload.
	applyTLS, err := g.reloadTLS(cfg)
	if err != nil {
		return "", err
	}
	src, brev, fresh, err := bundleFor(ctx, cfg, g.bundle, pre)
	if err != nil {
		return "", err
	}
	next, err := g.build(ctx, cfg, live, brev)
	if err == nil {
		if err = g.sealKeysKept(next); err != nil {
			next.Release()
		}
	}
	if err != nil {
		if fresh {
			src.stop()
		}
		return "", err
	}
	g.snaps.Swap(next)
	applyTLS()
	if src != g.bundle {
		if g.bundle != nil {
			g.bundle.stop()
		}
		g.bundle = src
		if src != nil {
			src.setCurrent(brev)
			g.startBundleLocked(src)
		}
	}
	return next.Revision, nil
}

// syncWatchLocked starts, re-targets or stops the file watch after the config changed. g.mu
// is held.
func (g *Gateway) syncWatchLocked() {
	cfg := g.watchCfg
	if g.bgCtx == nil || cfg == nil {
		return
	}
	// A refused config that also turned the watch off would otherwise leave the snapshot
	// that keeps serving unwatched, and the edit that fixes it unnoticed.
	on := cfg.Policies.Watch
	if live := g.snaps.Load(); live != nil {
		on = live.Config.Policies.Watch
	}
	if !on {
		if w := g.watch; w != nil {
			g.watch = nil
			// The watcher's own reload may be what holds g.mu: close without waiting here.
			g.bgWG.Add(1)
			go func() {
				defer g.bgWG.Done()
				w.close()
			}()
			g.log.Info("file watch stopped ([policies] watch = false)")
		}
		return
	}
	if g.watch == nil {
		w, err := newWatcher(g.bgCtx, g.log, func(ctx context.Context, changed []string) { _, _ = g.reloadFrom(ctx, triggerWatch, changed...) })
		if err != nil {
			g.log.Warn("file watch unavailable; reload with SIGHUP or POST /-/reload", "err", err)
			return
		}
		g.watch = w
	}
	g.watch.sync(targetsFor(cfg, g.path))
}

// restartOnly refuses a change that a running gateway cannot apply, naming every key that
// changed (never its value: [admin] token and [state] url carry secrets).
func restartOnly(old, cur *config.Config) error {
	var keys []string
	keys = changedKeys(keys, "server", old.Server, cur.Server)
	keys = changedKeys(keys, "admin", old.Admin, cur.Admin)
	keys = changedKeys(keys, "state", old.State, cur.State)
	keys = changedKeys(keys, "log", old.Log, cur.Log)
	keys = changedKeys(keys, "watch", old.Watch, cur.Watch)
	// The thresholds of every class are [watch]'s own keys, embedded without a table.
	keys = changedKeys(keys, "watch", old.Watch.WatchRule, cur.Watch.WatchRule)
	keys = changedKeys(keys, "delivery", old.Delivery, cur.Delivery)
	keys = changedKeys(keys, "demo", old.Demo, cur.Demo) // the sink listens from Run on
	if !old.AnyQueued() {
		for i := range cur.Routes {
			if cur.Routes[i].Queued() {
				// No delivery store was opened at start.
				keys = append(keys, "route["+strconv.Itoa(i+1)+"].delivery")
			}
		}
	}
	if len(keys) > 0 {
		return fmt.Errorf("%s: %s changed: these need a restart; nothing of this change was applied", cur.File, strings.Join(keys, ", "))
	}
	return nil
}

// sealKeysKept refuses next when a secret that [delivery] encryption_keys names (restartOnly
// keeps the names) holds another value than the one the keyring was made with at start: the
// decision log and the delivery store would go on sealing with the old value, and what they
// write would not open with the key the config names. It names the secrets, never a value.
func (g *Gateway) sealKeysKept(next *snapshot.Snapshot) error {
	var changed []string
	for _, k := range g.sealKeys {
		if v, _ := next.Secrets.Get(k.ID); !bytes.Equal(v, k.Value) {
			changed = append(changed, "secrets."+k.ID)
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("%s: %s changed: the value of a delivery.encryption_keys key needs a restart; nothing of this change was applied", next.Config.File, strings.Join(changed, ", "))
	}
	return nil
}

// changedKeys appends "section.key" for each field of the section struct whose value differs,
// named by its toml tag; fields without one (derived state) are not compared.
func changedKeys(keys []string, section string, old, cur any) []string {
	ov, cv := reflect.ValueOf(old), reflect.ValueOf(cur)
	for i := range ov.NumField() {
		name, _, _ := strings.Cut(ov.Type().Field(i).Tag.Get("toml"), ",")
		if name == "" || name == "-" {
			continue
		}
		if !reflect.DeepEqual(ov.Field(i).Interface(), cv.Field(i).Interface()) {
			keys = append(keys, section+"."+name)
		}
	}
	return keys
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
	if err := tokenlessAdminIsLoopback(cfg.Admin.Listen, adm.Addr(), cfg.Admin.Token); err != nil {
		adm.Close()
		pub.Close()
		g.close()
		return err
	}
	g.publicAddr, g.adminAddr = pub.Addr(), adm.Addr()
	if ta, ok := adm.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() && g.adminTLS == nil {
		g.log.Warn("the admin listener is not on loopback and serves plain HTTP: its token crosses the network in clear text; set [admin] tls_cert and tls_key", "listen", cfg.Admin.Listen)
	}
	admin := newAdmin(g, cfg.Admin.Token, adm.Addr())
	if g.adminTLS != nil {
		adm = tls.NewListener(adm, g.adminTLS.Config())
	}
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
	bgCtx, bgCancel := context.WithCancel(ctx)
	defer bgCancel()
	g.mu.Lock()
	g.bgCtx = bgCtx
	g.startBundleLocked(g.bundle)
	g.syncWatchLocked()
	g.mu.Unlock()
	g.bgWG.Add(1)
	go func() { defer g.bgWG.Done(); g.obs.runSampler(bgCtx) }()
	if g.sources != nil {
		g.bgWG.Add(1)
		go func() { defer g.bgWG.Done(); g.sources.Run(bgCtx) }()
	}
	dispCtx, dispCancel := context.WithCancel(context.Background())
	defer dispCancel()
	if g.deliveries != nil {
		go g.deliveries.Run(dispCtx)
	}
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
	g.draining.Store(true) // /readyz: 503, so a load balancer stops sending here
	g.stopBackground(bgCancel)
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	if err := g.srv.Shutdown(dctx); err != nil {
		runErr = errors.Join(runErr, err)
	}
	if g.deliveries != nil {
		// After the listener: nothing is enqueued any more. Attempts in flight finish, or
		// give their leases back when the drain time is up.
		dispCancel()
		if err := g.deliveries.Shutdown(dctx); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	_ = admin.Shutdown(dctx)
	if sink != nil {
		_ = sink.ShutdownWithContext(dctx)
	}
	g.close()
	return runErr
}

// stopBackground ends the file watch and bundle polls and waits for them. g.mu must not be
// held: a reload in progress finishes first.
func (g *Gateway) stopBackground(cancel context.CancelFunc) {
	cancel()
	g.mu.Lock()
	g.bgCtx = nil
	w := g.watch
	g.watch = nil
	if g.bundle != nil {
		g.bundle.stop()
	}
	g.mu.Unlock()
	if w != nil {
		w.close()
	}
	g.bgWG.Wait()
}

func (g *Gateway) close() {
	g.mu.Lock()
	if g.bundle != nil {
		g.bundle.stop()
	}
	g.mu.Unlock()
	g.snaps.Close()
	if g.store != nil {
		_ = g.store.Close()
	}
	if g.deliveries != nil {
		_ = g.deliveries.Store().Close()
	}
	_ = g.dlog.Close()
	_ = g.host.Close(context.Background())
}

// Addrs returns the bound public and admin addresses once Run has started.
func (g *Gateway) Addrs() (public, admin net.Addr) { return g.publicAddr, g.adminAddr }

// load builds the snapshot of the config at path exactly as a start would (policies from the
// dir or the bundle, filters compiled and pooled, secrets resolved) without listening.
// release frees the snapshot and its filters; call it once.
func load(ctx context.Context, path string, o Options) (snap *snapshot.Snapshot, release func(), err error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if _, _, err := listenerTLS(cfg); err != nil {
		return nil, nil, err
	}
	host, err := filter.NewHost(ctx, o.CacheDir)
	if err != nil {
		return nil, nil, fmt.Errorf("gateway: %w", err)
	}
	g := &Gateway{o: o, log: o.Logger, host: host}
	src, brev, _, err := bundleFor(ctx, cfg, nil, nil)
	if err != nil {
		_ = host.Close(ctx)
		return nil, nil, err
	}
	snap, err = g.build(ctx, cfg, nil, brev)
	if src != nil {
		src.stop() // the revision is built; nothing polls for a newer one
	}
	if err == nil && cfg.Watch.Enabled && cfg.Watch.AlertURL != "" {
		// A start would refuse an alert key that is not a Standard Webhooks key: so does check.
		if err = watch.CheckAlertSecret(cfg.Watch.AlertSecret, snap.Secrets.Get); err != nil {
			snap.Release()
			err = errors.New(cfg.File + ": " + err.Error())
		}
	}
	if err == nil {
		// So would encryption keys of the wrong size or an unknown secret.
		if _, _, err = deliveryKeyring(cfg, snap.Secrets); err != nil {
			snap.Release()
		}
	}
	if err != nil {
		_ = host.Close(ctx)
		return nil, nil, err
	}
	return snap, func() {
		snap.Release()
		_ = host.Close(context.Background())
	}, nil
}

// serverLimits are the listener limits of [server]: they need a restart to change.
func serverLimits(s *config.Server) server.Limits {
	return server.Limits{
		MaxBody: int(s.MaxBody), MaxHeader: int(s.MaxHeader),
		ReadTimeout: s.ReadTimeout.D(), WriteTimeout: s.WriteTimeout.D(), IdleTimeout: s.IdleTimeout.D(),
		MaxConns: s.MaxConns, MaxConnsPerIP: s.MaxConnsPerIP,
	}
}

// tokenlessAdminIsLoopback refuses an admin listener without a token bound anywhere but
// loopback. The config's check reads the listen address's text, where "localhost" counts
// as loopback whatever the host's resolver makes of it: what was bound is what counts.
func tokenlessAdminIsLoopback(listen string, bound net.Addr, token string) error {
	ta, ok := bound.(*net.TCPAddr)
	if !ok || token != "" || ta.IP.IsLoopback() {
		return nil
	}
	return fmt.Errorf("admin.listen: %q is bound to %s, which is not loopback; without [admin] token the admin listener must be", listen, ta.IP)
}
