package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/internal/lazyconn"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/policy"
	"github.com/hookwall/hookwall/engine/state"
)

// Observer receives per-request measurements (metrics). Implementations must be cheap and
// safe for concurrent use; a nil Observer is allowed.
type Observer interface {
	Request(route string, outcome decisionlog.Outcome, status int, total time.Duration)
	Policy(route string, d time.Duration)
	Filter(route, filter string, d time.Duration, errKind string)
	Upstream(route string, d time.Duration, failed bool)
	State(failed bool)
}

// Watcher watches decided requests and refuses blocked sources (engine/watch). Both calls
// run on every request: they must be cheap, not allocate, and be safe for concurrent use.
type Watcher interface {
	// Blocked reports whether the client ip is blocked at now: refuse means answer 429 with
	// Retry-After retryAfter seconds before any filter or policy; marked sets
	// input.source.blocked for the policy.
	Blocked(ip string, now time.Time) (retryAfter int64, refuse, marked bool)
	// Observe counts a decided request (outcome and reasons as in the decision log).
	Observe(route, ip string, outcome decisionlog.Outcome, status int, reasons []string, labels map[string]any, now time.Time)
}

// Options configure a Server.
type Options struct {
	Snapshots *snapshot.Holder
	Store     state.Store // nil: obligations that need state fail closed with 503
	FailOpen  bool        // state backend down: forward instead of 503
	Log       *decisionlog.Logger
	Logger    *slog.Logger
	Observer  Observer
	TLS       *tls.Config // nil: plain HTTP
	Watch     Watcher     // nil: no watching, no blocks
	// ClientCAs, with TLS, are the client CAs the handshakes verify against, renewed by
	// reloads (tlsconf.Listener); nil: the handshake's verification is the only one.
	ClientCAs ClientCAs
	// Queue stores the requests of queued routes; nil answers them 503.
	Queue Queue
	// Limits are the listener's; they need a restart to change.
	Limits Limits
}

// ClientCAs are the client CAs of a TLS listener that a reload may change. A request on a
// connection accepted before the last change is served only once the connection's client
// certificate has been verified against the CAs in force (checkPeer), once per change.
type ClientCAs interface {
	// ClientCAGeneration changes whenever the CAs do; it is read on every request.
	ClientCAGeneration() uint64
	// VerifyClient verifies a client's chain (leaf first) against the CAs in force and
	// returns their generation.
	VerifyClient(certs []*x509.Certificate) (generation uint64, err error)
}

// Limits bound what the listener accepts. Zero means fasthttp's default.
type Limits struct {
	MaxBody, MaxHeader                     int
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxConns, MaxConnsPerIP                int
}

// Server is the public listener. Create with New; Serve then Shutdown.
type Server struct {
	o        Options
	srv      *fasthttp.Server
	log      *slog.Logger
	serving  atomic.Bool
	idPrefix [8]byte // random per server: ids from different gateways never collide
	idSeq    atomic.Uint64
	xc       *policy.CrossCheck // [policies] cross_check
}

// New builds a server with the listener limits of o.Limits.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Server{o: o, log: o.Logger, xc: newCrossCheck(o)}
	_, _ = rand.Read(s.idPrefix[:])
	s.srv = &fasthttp.Server{
		Handler:                      s.handle,
		ErrorHandler:                 s.handleError,
		Name:                         "hookwall",
		MaxRequestBodySize:           o.Limits.MaxBody,
		ReadBufferSize:               o.Limits.MaxHeader,
		ReadTimeout:                  o.Limits.ReadTimeout,
		WriteTimeout:                 o.Limits.WriteTimeout,
		IdleTimeout:                  o.Limits.IdleTimeout,
		Concurrency:                  o.Limits.MaxConns,
		MaxConnsPerIP:                o.Limits.MaxConnsPerIP,
		DisablePreParseMultipartForm: true,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		CloseOnShutdown:              true,
		// fasthttp's parse errors otherwise quote the raw header block (Authorization and
		// signature headers included) and they reach the decision log and the process log.
		SecureErrorLogMessage: true,
		TLSConfig:             o.TLS,
		Logger:                fasthttpLogger{o.Logger},
	}
	return s
}

// Serve accepts connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.serving.Store(true)
	// fasthttp moves a connection's deadlines later at every request (lazyconn).
	if s.o.ClientCAs != nil {
		ln = peerListener{Listener: ln, cas: s.o.ClientCAs}
	} else {
		ln = lazyconn.Listener{Listener: ln}
	}
	if s.o.TLS != nil {
		ln = tls.NewListener(ln, s.o.TLS)
	}
	return s.srv.Serve(ln)
}

// Shutdown stops accepting, waits for in-flight requests (up to ctx), then returns.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.ShutdownWithContext(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("server: shutdown: in-flight requests did not finish: %w", err)
	}
	return err
}

// peerListener is lazyconn.Listener for a listener with ClientCAs: each connection is a
// peerConn that notes the CAs' generation when it was accepted.
type peerListener struct {
	net.Listener
	cas ClientCAs
}

// Accept implements net.Listener.
func (l peerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &peerConn{Conn: lazyconn.Wrap(c), verified: l.cas.ClientCAGeneration()}, nil
}

// peerConn is the connection beneath a TLS connection of a listener with ClientCAs.
// verified is the generation of the CAs its client certificate is known to chain to: at
// accept, the generation then in force, which its handshake (later) used or one newer; after
// a change, the one checkPeer verified it against. Only the connection's own goroutine, which
// serves its requests one after another, reads and writes it after Accept.
type peerConn struct {
	*lazyconn.Conn
	verified uint64
}

type fasthttpLogger struct{ l *slog.Logger }

// Printf logs fasthttp's message with its arguments redacted (redactArgs): its errors quote
// the request bytes they refused.
func (f fasthttpLogger) Printf(format string, args ...any) {
	f.l.Debug(fmt.Sprintf(format, redactArgs(args)...), "component", "fasthttp")
}
