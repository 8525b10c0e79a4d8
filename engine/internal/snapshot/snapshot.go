package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/internal/input"
	"github.com/hookwall/hookwall/engine/internal/lazyconn"
	"github.com/hookwall/hookwall/engine/oauth"
	"github.com/hookwall/hookwall/engine/policy"
	"github.com/hookwall/hookwall/engine/tlsconf"
)

// Filter is a loaded filter as a route uses it.
type Filter struct {
	*filter.Filter
	OnError config.OnError
	// SpecHash identifies the module bytes, config and limits: an unchanged filter is reused
	// by the next snapshot instead of recompiled.
	SpecHash string
	// holders counts the snapshots that hold the filter, the one that loaded it and every
	// later one that shares it: the last of them to close closes it, in whatever order they
	// close (a snapshot replaced before an older one's last request must not close a filter
	// that request is still to use).
	holders atomic.Int32
}

// specHash is the filter's own hash (module, config, limits) with what the snapshot adds to it.
func specHash(sp *filter.Spec, onError config.OnError) string {
	return sp.Hash() + ":" + string(onError)
}

// Route is a configured route, ready to serve.
type Route struct {
	Name     string
	Config   *config.Route
	Query    *policy.Query
	Filters  []*Filter
	Client   *fasthttp.HostClient
	Timeout  time.Duration
	BasePath string // upstream URL path, prepended to the request path
	Scheme   string // upstream scheme
	Host     string // upstream host[:port]
	// Input is input.route, built once: it never changes for the route.
	Input   ast.Object
	methods map[string]bool
	sibling *Route // the next route with the same host and path or prefix (router)

	// Shadow is the prepared shadow_policy, nil when the route has none.
	Shadow *policy.Query
	// clientKey names Client's pool in the snapshot's clients (clientKey).
	clientKey string

	// CredHeaders name, lower-cased, the request headers the route's policy or its shadow
	// hands to a builtin as credentials (policy.Query.CredentialHeaders): their values are
	// masked in every record of the route, whether or not a policy ran.
	CredHeaders []string
	// MaskedPath is the route's prefix followed by "***" when the route's policy or its
	// shadow hands a value computed from the path to a builtin as a credential
	// (policy.Query.CredentialPath), else "": the path a record of the route logs when no
	// credential the policy was handed masks it (the policy did not run, or decided before
	// the call).
	MaskedPath string
}

// MaskedTarget is r.MaskedPath when path is a path r's prefix routes and r has a
// MaskedPath, else "".
func (r *Route) MaskedTarget(path string) string {
	if r.MaskedPath == "" || !strings.HasPrefix(path, r.Config.Prefix) {
		return ""
	}
	return r.MaskedPath
}

// AllowsMethod reports whether the route accepts method; a route without methods accepts all.
func (r *Route) AllowsMethod(m []byte) bool {
	if r.methods == nil {
		return true
	}
	return r.methods[string(m)]
}

// Methods returns the allowed methods joined for an Allow header.
func (r *Route) Methods() string { return strings.Join(r.Config.Methods, ", ") }

// Snapshot is one immutable configuration, ready to serve.
type Snapshot struct {
	Config   *config.Config
	Policies *policy.Set
	Routes   []*Route
	Secrets  *config.Secrets
	Filters  map[string]*Filter
	// OAuth is the [[oauth]] issuers hookwall.oauth.verify checks tokens with; nil when none.
	OAuth *oauth.Set
	// Revision names this snapshot: policy revision + config hash.
	Revision string
	LoadedAt time.Time

	router    router
	refs      atomic.Int64
	closeOnce sync.Once
	log       *slog.Logger
	// clients are the upstream connection pools by clientKey: routes with the same upstream
	// share one, and so do consecutive snapshots, so a reload neither drops keep-alive
	// connections nor leaves a retired pool's cleaner goroutine behind.
	clients map[string]*pool
}

// pool is an upstream connection pool. Like a Filter, it counts the snapshots that hold it,
// and the last of them to close closes its idle connections.
type pool struct {
	*fasthttp.HostClient
	holders atomic.Int32
}

// Options are what Build needs beyond the config.
type Options struct {
	Host   *filter.Host
	Getenv func(string) (string, bool)
	Logger *slog.Logger
	// Previous is the live snapshot, if any: its upstream connection pools are shared when the
	// upstream (scheme, address, TLS server name and CA, timeout, max_response_body) is unchanged, and a filter whose hash matches
	// one of its filters is shared instead of recompiled.
	Previous *Snapshot
	// KeepInputs, with Previous and Policies, builds Previous.Config (cfg must be it) with
	// new policies on Previous's other inputs: no file the config names is read again, and
	// the secrets, filters and upstream pools (with their upstream_ca) are Previous's. A new
	// bundle is built so: a file changed on disk since Previous was built belongs to the next
	// config reload, which applies or refuses it with the rest of the change.
	KeepInputs bool
	// Policies, when set, loads the policies instead of the policy directory (an OPA bundle).
	// It gets the options a directory load gets (secrets, allowed builtins, clock), so the
	// verify builtin sees this snapshot's secrets.
	Policies PolicySource
	// Now is the clock of timestamp checks (tests); nil means time.Now.
	Now func() time.Time
}

// PolicySource loads policies from somewhere other than the policy directory.
type PolicySource interface {
	// Load compiles the policies with o.
	Load(ctx context.Context, o policy.Options) (*policy.Set, error)
	// Revision is a digest of everything Load reads (modules and data); it is part of the
	// snapshot revision.
	Revision() string
}

// Build loads everything cfg names. On error nothing is left open.
func Build(ctx context.Context, cfg *config.Config, o Options) (_ *Snapshot, err error) {
	if o.Getenv == nil {
		o.Getenv = os.LookupEnv
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	var secrets *config.Secrets
	if o.KeepInputs {
		if o.Previous == nil || o.Previous.Config != cfg || o.Policies == nil {
			return nil, errors.New("snapshot: KeepInputs builds the Previous snapshot's own config with new Policies")
		}
		secrets = o.Previous.Secrets
	} else if secrets, err = cfg.ResolveSecrets(o.Getenv); err != nil {
		return nil, err
	}
	s := &Snapshot{Config: cfg, Secrets: secrets, LoadedAt: time.Now(), Filters: map[string]*Filter{}, log: o.Logger,
		clients: map[string]*pool{}}
	s.refs.Store(1)
	defer func() {
		if err != nil {
			s.closeResources(ctx)
		}
	}()
	if s.OAuth, err = buildOAuth(cfg, secrets, o.Previous, o.Logger, o.Now); err != nil {
		return nil, err
	}
	var pset *policy.Set
	popts := policy.Options{AllowBuiltins: cfg.Policies.AllowBuiltins, Secrets: secrets, Now: o.Now, OPAOnly: cfg.Policies.Evaluator == config.EvaluatorOPA}
	if s.OAuth != nil {
		popts.OAuth = s.OAuth
	}
	if err := checkPolicyKeys(cfg, o.Policies == nil); err != nil {
		return nil, err
	}
	switch {
	case o.Policies != nil:
		pset, err = o.Policies.Load(ctx, popts)
	default:
		pset, err = policy.Load(ctx, cfg.Policies.Dir, popts)
	}
	if err != nil {
		return nil, err
	}
	s.Policies = pset
	for i := range cfg.Filters {
		fc := &cfg.Filters[i]
		f, ferr := loadFilter(ctx, o, fc)
		if ferr != nil {
			return nil, fmt.Errorf("%s: filter[%d] %q: %w", cfg.Where("filter", i), i+1, fc.Name, ferr)
		}
		s.Filters[fc.Name] = f
		f.holders.Add(1) // closeResources lets it go, this build failing or not
	}
	var errs []error
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		var kept *Route // the same route of Previous, whose pool it keeps
		if o.KeepInputs {
			kept = o.Previous.Routes[i]
		}
		r, rerr := s.buildRoute(ctx, rc, o.Previous, kept)
		if rerr != nil {
			errs = append(errs, fmt.Errorf("%s: route[%d] %q: %w", cfg.Where("route", i), i+1, rc.Name, rerr))
			continue
		}
		s.Routes = append(s.Routes, r)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	s.router = newRouter(s.Routes)
	h := sha256.New()
	h.Write([]byte(pset.Revision()))
	if o.Policies != nil {
		h.Write([]byte(o.Policies.Revision()))
	}
	h.Write(cfg.Digest[:])
	names := make([]string, 0, len(s.Filters))
	for n := range s.Filters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h.Write([]byte(s.Filters[n].SpecHash))
	}
	s.Revision = hex.EncodeToString(h.Sum(nil))[:12]
	return s, nil
}

// loadFilter loads fc, or returns the previous snapshot's filter when its spec is unchanged
// (with KeepInputs, whatever its module file holds now).
func loadFilter(ctx context.Context, o Options, fc *config.Filter) (*Filter, error) {
	if o.KeepInputs {
		return o.Previous.Filters[fc.Name], nil // the same config: the same names
	}
	if o.Host == nil {
		return nil, errors.New("no wasm host")
	}
	mod, err := os.ReadFile(fc.Module)
	if err != nil {
		return nil, err
	}
	timeout := fc.Timeout.D()
	if fc.NoDeadline {
		timeout = filter.NoDeadline
	}
	spec := filter.Spec{
		Name: fc.Name, Module: mod, Config: []byte(fc.Config), Timeout: timeout,
		Memory: uint64(fc.Memory), Pool: fc.Pool, PoolMax: fc.PoolMax, MaxUses: fc.MaxUses, Logger: o.Logger.With("filter", fc.Name),
	}
	hash := specHash(&spec, fc.OnError)
	if o.Previous != nil {
		if prev, ok := o.Previous.Filters[fc.Name]; ok && prev.SpecHash == hash {
			return prev, nil
		}
	}
	f, err := o.Host.Load(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &Filter{Filter: f, OnError: fc.OnError, SpecHash: hash}, nil
}

// buildRoute builds rc, sharing prev's pool of the same upstream; with kept (KeepInputs),
// kept's pool, the upstream_ca not read again.
func (s *Snapshot) buildRoute(ctx context.Context, rc *config.Route, prev *Snapshot, kept *Route) (*Route, error) {
	q, err := s.Policies.Prepare(ctx, rc.PolicyPackage())
	if err != nil {
		return nil, err
	}
	var shadow *policy.Query
	if rc.ShadowPolicy != "" {
		if shadow, err = s.Policies.Prepare(ctx, rc.ShadowPackage()); err != nil {
			return nil, fmt.Errorf("shadow_policy: %w", err)
		}
	}
	u := rc.UpstreamURL()
	r := &Route{
		Name: rc.Name, Config: rc, Query: q, Shadow: shadow, Timeout: rc.Timeout.D(),
		BasePath: strings.TrimSuffix(u.EscapedPath(), "/"), Scheme: u.Scheme, Host: u.Host,
		Input: input.RouteObject(rc.Name, rc.Path+rc.Prefix),
	}
	r.CredHeaders = q.CredentialHeaders()
	credPath := q.CredentialPath()
	if shadow != nil {
		for _, h := range shadow.CredentialHeaders() {
			if !slices.Contains(r.CredHeaders, h) {
				r.CredHeaders = append(slices.Clip(r.CredHeaders), h)
			}
		}
		credPath = credPath || shadow.CredentialPath()
	}
	if credPath && rc.Prefix != "" {
		r.MaskedPath = rc.Prefix + "***"
	}
	if len(rc.Methods) > 0 {
		r.methods = map[string]bool{}
		for _, m := range rc.Methods {
			r.methods[m] = true
		}
	}
	for _, name := range rc.Filters {
		r.Filters = append(r.Filters, s.Filters[name])
	}
	addr := u.Host
	if u.Port() == "" {
		if u.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	key := ""
	if kept != nil {
		key = kept.clientKey
	} else if key, err = clientKey(u.Scheme, addr, u.Hostname(), r.Timeout, int64(rc.MaxResponseBody), rc.UpstreamCA); err != nil {
		return nil, err
	}
	r.clientKey = key
	if p := s.clients[key]; p != nil {
		r.Client = p.HostClient
		return r, nil
	}
	p := prev.client(key)
	if p == nil {
		if p, err = newPool(u, addr, r.Timeout, rc); err != nil {
			return nil, err
		}
	}
	p.holders.Add(1) // closeResources lets it go, this build failing or not
	s.clients[key] = p
	r.Client = p.HostClient
	return r, nil
}

// newPool makes the connection pool of an upstream at addr (u's scheme and host name).
func newPool(u *url.URL, addr string, timeout time.Duration, rc *config.Route) (*pool, error) {
	// The CA bundle is read at every build, so a reload picks up a rotated upstream CA.
	tc, err := tlsconf.Upstream(u.Hostname(), rc.UpstreamCA)
	if err != nil {
		return nil, err
	}
	// The request's timeout (set on every forwarded request) bounds the dial, the write and
	// the read of the answer: fasthttp arms both connection deadlines from it. A client-wide
	// ReadTimeout or WriteTimeout equal to it would never come first, and would cost two clock
	// reads a request. The one thing the request's timeout does not bound is the TLS
	// handshake, which the dialer makes, bounded by the same duration (lazyconn.Configure).
	c := &fasthttp.HostClient{
		Addr:                addr,
		IsTLS:               u.Scheme == "https",
		TLSConfig:           tc,
		MaxConns:            1024,
		MaxIdleConnDuration: 30 * time.Second,
		MaxResponseBodySize: int(rc.MaxResponseBody),
		// The read buffer bounds the answer's header block; fasthttp's 4KiB default refuses
		// common answers (large cookies, CSP headers). A larger block is a 502.
		ReadBufferSize:         upstreamHeaderLimit,
		DisablePathNormalizing: true,
		// With no Name either, a request the provider sent without a User-Agent is forwarded
		// without one: fasthttp puts a client's Name there, whatever this option says.
		NoDefaultUserAgentHeader: true,
	}
	// Connections move both deadlines later for every request, and are checked before they
	// carry one after idling; a request past MaxConns waits for a free one within the route's
	// timeout. A request is sent again only when none of it was sent: never twice to the
	// upstream.
	lazyconn.Configure(c, timeout)
	return &pool{HostClient: c}, nil
}

// upstreamHeaderLimit bounds the header block of an upstream's answer.
const upstreamHeaderLimit = 64 << 10

// clientKey identifies an upstream connection pool: two routes (or snapshots) with equal keys
// can share one. The CA file's content is part of it, so a rotated CA gets a new pool.
func clientKey(scheme, addr, serverName string, timeout time.Duration, maxBody int64, caFile string) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%d\x00%d\x00", scheme, addr, serverName, timeout, maxBody)
	if caFile != "" {
		ca, err := os.ReadFile(caFile)
		if err != nil {
			return "", fmt.Errorf("upstream_ca: %w", err)
		}
		h.Write(ca)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// client returns s's pool for key; nil when s is nil or has none.
func (s *Snapshot) client(key string) *pool {
	if s == nil {
		return nil
	}
	return s.clients[key]
}

// Match finds the route for host, path and method (the router's precedence). ok is false when
// no route matches the host and path; a route that matches them but not the method is
// returned, for its 405.
func (s *Snapshot) Match(host, path, method []byte) (*Route, bool) {
	return s.router.match(host, path, method)
}

// Acquire takes a reference for one request. It returns false when s was closed in between
// (the caller loads the new live snapshot and tries again). The count never leaves zero:
// adding first and backing off would let a second caller, adding while the first is at
// one, take a reference to a closed snapshot.
func (s *Snapshot) acquire() bool {
	for {
		n := s.refs.Load()
		if n <= 0 {
			return false
		}
		if s.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release drops a reference taken by Holder.Acquire.
func (s *Snapshot) Release() {
	if s.refs.Add(-1) == 0 {
		s.closeOnce.Do(func() { s.closeResources(context.Background()) })
	}
}

func (s *Snapshot) closeResources(ctx context.Context) {
	s.OAuth.Close()
	for name, f := range s.Filters {
		if f.holders.Add(-1) == 0 {
			if err := f.Close(ctx); err != nil {
				s.log.Warn("closing filter", "filter", name, "err", err)
			}
		}
	}
	for _, p := range s.clients {
		if p.holders.Add(-1) == 0 {
			p.CloseIdleConnections()
		}
	}
}

// Holder holds the live snapshot. Safe for concurrent use.
type Holder struct {
	p atomic.Pointer[Snapshot]
}

// Load returns the live snapshot without a reference (status pages); nil before the first.
func (h *Holder) Load() *Snapshot { return h.p.Load() }

// Acquire returns the live snapshot with a reference the caller must Release; nil before the
// first snapshot is stored.
func (h *Holder) Acquire() *Snapshot {
	for {
		s := h.p.Load()
		if s == nil || s.acquire() {
			return s
		}
	}
}

// Swap makes next live and releases the previous one, which closes once idle.
func (h *Holder) Swap(next *Snapshot) *Snapshot {
	prev := h.p.Swap(next)
	if prev != nil {
		prev.Release()
	}
	return prev
}

// Close releases the live snapshot.
func (h *Holder) Close() {
	if s := h.p.Swap(nil); s != nil {
		s.Release()
	}
}

// checkPolicyKeys refuses, naming the file, line and key, the [policies] values the policy
// package would refuse without them: a builtin allow_builtins cannot turn on, and (when the
// policies are read from dir) a dir that is not there.
func checkPolicyKeys(cfg *config.Config, fromDir bool) error {
	if err := policy.CheckAllowBuiltins(cfg.Policies.AllowBuiltins); err != nil {
		return fmt.Errorf("%s: policies.allow_builtins: %w", cfg.Where("policies", "allow_builtins"), err)
	}
	if fromDir {
		if _, err := os.Stat(cfg.Policies.Dir); err != nil {
			return fmt.Errorf("%s: policies.dir: %w", cfg.Where("policies", "dir"), err)
		}
	}
	return nil
}
