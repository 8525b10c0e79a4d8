package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/internal/rawreq"
	"github.com/hookwall/hookwall/engine/internal/server"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
)

// Checked is a configuration loaded and compiled exactly as New loads it (filters,
// policies, secrets, bundles, test_on_reload), without a listener. It answers what the
// gateway would do: the routes' evaluators and dry runs of requests. Close releases it.
type Checked struct {
	holder  snapshot.Holder // the one snapshot, for the server and the accessors
	srv     *server.Server
	release func()
}

// Evaluation is what the gateway would do with a request, short of acting on it.
type Evaluation = server.Evaluation

// FilterOutcome is what one filter did in a dry run.
type FilterOutcome = server.FilterOutcome

// RouteInfo says which evaluator decides a route.
type RouteInfo struct {
	Name, Package, Evaluator string
	// Why is the reason a policy is not compiled, "" when it is.
	Why string
}

// Check loads and compiles the configuration at path as New would; it fails where New
// would fail, with the same errors.
func Check(ctx context.Context, path string, o Options) (*Checked, error) {
	snap, release, err := load(ctx, path, o)
	if err != nil {
		return nil, err
	}
	cfg := snap.Config
	if err := deliveryDirExists(cfg); err != nil {
		release()
		return nil, err
	}
	c := &Checked{release: release}
	c.holder.Swap(snap) // no reference of its own: release frees the snapshot
	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	// The live server's options but the listener, the state store, the log and the queue: a
	// dry run makes no rate-limit or dedupe check and acts on nothing.
	c.srv = server.New(server.Options{Snapshots: &c.holder, Logger: logger, FailOpen: cfg.State.FailMode == config.FailOpen,
		Limits: serverLimits(&cfg.Server)})
	return c, nil
}

// Close releases the compiled configuration.
func (c *Checked) Close() { c.release() }

// Revision names the configuration: policy revision and config hash.
func (c *Checked) Revision() string { return c.holder.Load().Revision }

// Policies is the configuration's [policies] table.
func (c *Checked) Policies() config.Policies { return c.holder.Load().Config.Policies }

// Routes lists the routes in configuration order with their evaluators.
func (c *Checked) Routes() []RouteInfo {
	routes := c.holder.Load().Routes
	out := make([]RouteInfo, 0, len(routes))
	for _, r := range routes {
		ev, why := r.Query.Evaluator()
		out = append(out, RouteInfo{Name: r.Name, Package: r.Query.Package(), Evaluator: ev, Why: why})
	}
	return out
}

// DryRun tunes Evaluate.
type DryRun struct {
	// Route names the route to evaluate; "" routes the request as the gateway would.
	Route string
	// RemoteIP is the client's address (X-Forwarded-For is then honoured from [server]
	// trusted_proxies as live); nil means 127.0.0.1.
	RemoteIP net.IP
	// Tracer, when set, receives the live policy's evaluation trace.
	Tracer topdown.QueryTracer
}

// Evaluate runs a captured request through the gateway's pipeline (router, filters,
// policy, shadow) as a live request would run, without forwarding, logging or touching the
// state store. A request the listener itself would refuse (too large, bad framing) gets the
// listener's answer.
func (c *Checked) Evaluate(capture *Capture, o DryRun) (*Evaluation, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	snap := c.holder.Load()
	if err := capture.Into(req, int(snap.Config.Server.MaxHeader), int(snap.Config.Server.MaxBody)); err != nil {
		return refused(err, snap.Revision), nil
	}
	ip := o.RemoteIP
	if ip == nil {
		ip = net.IPv4(127, 0, 0, 1)
	}
	return c.srv.Evaluate(req, server.DryRun{Route: o.Route, RemoteAddr: &net.TCPAddr{IP: ip, Port: 40000}, Tracer: o.Tracer})
}

// refused is the evaluation of a request the listener does not accept.
func refused(err error, revision string) *Evaluation {
	ev := &Evaluation{Revision: revision, Outcome: decisionlog.OutcomeError, Status: http.StatusBadRequest,
		Deny: []string{}, Reasons: []string{}, Labels: map[string]any{}, Filters: []FilterOutcome{}, Error: err.Error()}
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		ev.Outcome, ev.Status = decisionlog.OutcomeTooLarge, http.StatusRequestEntityTooLarge
	case errors.As(err, &small):
		ev.Status = http.StatusRequestHeaderFieldsTooLarge
	}
	return ev
}

// Capture is a request read from a file: a raw HTTP/1.1 request or curl --trace output.
type Capture struct{ r *rawreq.Request }

// MaxCaptureSize bounds a capture file; read at most one byte more to see it is too large.
const MaxCaptureSize = rawreq.MaxSize

// ParseCapture reads a raw HTTP/1.1 request or curl --trace / --trace-ascii output.
func ParseCapture(b []byte) (*Capture, error) {
	r, err := rawreq.Parse(b)
	if err != nil {
		return nil, err
	}
	return &Capture{r: r}, nil
}

// Method, Target and Body are the captured request's.
func (c *Capture) Method() string { return c.r.Method }
func (c *Capture) Target() string { return c.r.Target }
func (c *Capture) Body() []byte   { return c.r.Body }

// Into fills req as the listener would have read the capture, refusing it as the listener
// would with maxHeader and maxBody.
func (c *Capture) Into(req *fasthttp.Request, maxHeader, maxBody int) error {
	return c.r.Into(req, maxHeader, maxBody)
}

// deliveryDirExists reports a queued config whose SQLite store could not be created: its
// directory is missing or no directory. run would fail opening it; check says so first,
// with the key's line.
func deliveryDirExists(cfg *config.Config) error {
	if !cfg.AnyQueued() || cfg.Delivery.Store != config.StoreSQLite {
		return nil
	}
	dir := filepath.Dir(cfg.Delivery.Path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%s: delivery.path: the directory %s does not exist: create it, or give a path in one that does", cfg.Where("delivery", "path"), dir)
	}
	return nil
}
