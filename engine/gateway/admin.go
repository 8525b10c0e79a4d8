package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/oauth"
	"github.com/hookwall/hookwall/engine/watch"
)

type admin struct {
	g     *Gateway
	token string
	srv   *http.Server
	mux   *http.ServeMux
	// loopback is set when the listener is bound to a loopback address: the Host header must
	// then name loopback with port.
	loopback bool
	port     string
	// contention is the mutex and block sampling of timed profiles (pprof.go).
	contention contention
}

// AdminHeader is the header that makes an admin POST a request no web page can send
// without the browser asking the admin listener first (which it never allows): curl -X POST
// -H 'Hookwall-Admin: 1' http://127.0.0.1:9090/-/reload.
const AdminHeader = "Hookwall-Admin"

// newAdmin builds the admin handler for the listener bound at addr.
func newAdmin(g *Gateway, token string, addr net.Addr) *admin {
	a := &admin{g: g, token: token, mux: http.NewServeMux()}
	if ta, ok := addr.(*net.TCPAddr); ok {
		a.loopback, a.port = ta.IP.IsLoopback(), strconv.Itoa(ta.Port)
	}
	a.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	a.mux.HandleFunc("GET /readyz", a.readyz)
	a.mux.HandleFunc("GET /-/status", a.auth(a.statusz))
	a.mux.HandleFunc("POST /-/reload", a.auth(a.reload))
	a.mountDeliveries() // /-/deliveries (admin_deliveries.go)
	a.mountPprof()
	a.mountBlocks()
	a.mountObservability() // /metrics, the status page at /, /-/recent (statuspage.go)
	a.srv = &http.Server{Handler: a.guard(a.mux), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second,
		// net/http's own complaints (a refused TLS handshake, a failed accept) go to the
		// gateway's log, not to the standard logger's stderr.
		ErrorLog: slog.NewLogLogger(g.log.Handler(), slog.LevelWarn)}
	return a
}

func (a *admin) Serve(ln net.Listener) error {
	err := a.srv.Serve(ln)
	if err == http.ErrServerClosed {
		return nil
	}
	return err
}

func (a *admin) Shutdown(ctx context.Context) error { return a.srv.Shutdown(ctx) }

// guard keeps web pages out of the admin listener, which by default is loopback without a
// token, so anything running in a local browser can reach it:
//
//   - DNS rebinding: a page on attacker.example whose name is re-pointed at 127.0.0.1 reads
//     the admin's answers as same-origin. On a loopback listener the Host header must be a
//     loopback name or address with the listener's port, or the answer is 421. (A listener
//     that is not loopback requires a token, which such a page does not have.)
//   - Cross-site requests: a page can POST a form or a text/plain fetch anywhere without the
//     browser asking first. Every request other than GET and HEAD must carry what only a
//     preflighted request can: the Hookwall-Admin header, Content-Type: application/json,
//     or an Authorization header (checked by auth where a token is set). Otherwise 403.
func (a *admin) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.loopback && !loopbackHost(r.Host, a.port) {
			writeJSON(w, http.StatusMisdirectedRequest, map[string]string{"error": "the admin listener answers only to a loopback Host with its port (localhost:" + a.port + ", 127.0.0.1:" + a.port + ", [::1]:" + a.port + ")"})
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !preflighted(r) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "admin " + r.Method + " needs the header " + AdminHeader + ": 1 (or Content-Type: application/json, or the bearer token)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether host (a Host header) is localhost or a loopback IP, with port.
// A Host without a port names port 80.
func loopbackHost(host, port string) bool {
	name, p, err := net.SplitHostPort(host)
	if err != nil {
		name, p = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), "80"
	}
	if p != port {
		return false
	}
	if strings.EqualFold(name, "localhost") {
		return true
	}
	ip := net.ParseIP(name)
	return ip != nil && ip.IsLoopback()
}

// preflighted reports whether r carries something a browser sends cross-origin only after a
// CORS preflight, which the admin listener never answers.
func preflighted(r *http.Request) bool {
	if r.Header.Get(AdminHeader) != "" || r.Header.Get("Authorization") != "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// auth requires "Authorization: Bearer <token>" when a token is configured. The scheme is
// matched in any case (RFC 9110 section 11.1: a client may send "bearer"); the token is
// compared through its SHA-256, so neither its bytes nor its length show in the time taken.
func (a *admin) auth(h http.HandlerFunc) http.HandlerFunc {
	if a.token == "" {
		return h
	}
	want := sha256.Sum256([]byte(a.token))
	return func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearerToken(r.Header.Get("Authorization"))
		got := sha256.Sum256([]byte(tok))
		if subtle.ConstantTimeCompare(got[:], want[:]) != 1 || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hookwall admin"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "admin token required"})
			return
		}
		h(w, r)
	}
}

// bearerToken returns the token of an Authorization value of the Bearer scheme (RFC 6750
// section 2.1: the scheme, one or more spaces, the token), and false for any other value.
func bearerToken(v string) (string, bool) {
	scheme, tok, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimLeft(tok, " ")
	return tok, tok != ""
}

func (a *admin) readyz(w http.ResponseWriter, _ *http.Request) {
	if a.g.snaps.Load() == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "loading"})
		return
	}
	if a.g.draining.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	writeJSON(w, 200, map[string]string{"status": "ready"})
}

type routeStatus struct {
	Name     string   `json:"name"`
	Host     string   `json:"host,omitempty"`
	Path     string   `json:"path,omitempty"`
	Prefix   string   `json:"prefix,omitempty"`
	Methods  []string `json:"methods,omitempty"`
	Upstream string   `json:"upstream"` // userinfo masked
	Policy   string   `json:"policy"`
	Shadow   string   `json:"shadow_policy,omitempty"`
	Filters  []string `json:"filters"`
	// Evaluator is "compiled" (the fast path) or "opa" (topdown); EvaluatorReason says why a
	// policy is not compiled, with its file and line.
	Evaluator       string `json:"evaluator"`
	EvaluatorReason string `json:"evaluator_reason,omitempty"`
}

type filterStatus struct {
	Name    string         `json:"name"`
	Module  string         `json:"module"`
	OnError config.OnError `json:"on_error"`
	Hash    string         `json:"hash"`
}

type statusDoc struct {
	Status
	Routes   []routeStatus  `json:"routes"`
	Policies []string       `json:"policies"`
	Files    []string       `json:"policy_files"`
	Filters  []filterStatus `json:"filters"`
	Secrets  []string       `json:"secrets"`
	// OAuth is each [[oauth]] issuer's key set and introspection state.
	OAuth []oauth.Stats `json:"oauth"`
	// Watch is the watcher's anomalies, blocks and counters; absent when watching is off.
	Watch *watch.Status `json:"watch,omitempty"`
}

func (a *admin) statusz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, a.g.statusDoc())
}

func (g *Gateway) statusDoc() statusDoc {
	doc := statusDoc{Status: g.Status()}
	if g.sources != nil {
		ws := g.sources.Status(time.Now())
		doc.Watch = &ws
	}
	snap := g.snaps.Acquire()
	if snap == nil {
		return doc
	}
	defer snap.Release()
	for _, r := range snap.Routes {
		rs := routeStatus{Name: r.Name, Host: r.Config.Host, Path: r.Config.Path, Prefix: r.Config.Prefix, Methods: r.Config.Methods, Upstream: config.RedactURL(r.Config.Upstream), Policy: r.Config.Policy, Shadow: r.Config.ShadowPolicy, Filters: r.Config.Filters}
		if rs.Filters == nil {
			rs.Filters = []string{}
		}
		if r.Query != nil {
			rs.Evaluator, rs.EvaluatorReason = r.Query.Evaluator()
		}
		doc.Routes = append(doc.Routes, rs)
	}
	doc.Policies = snap.Policies.Packages()
	doc.Files = snap.Policies.Files()
	for i := range snap.Config.Filters {
		fc := &snap.Config.Filters[i]
		fs := filterStatus{Name: fc.Name, Module: fc.Module, OnError: fc.OnError}
		if f := snap.Filters[fc.Name]; f != nil {
			fs.Hash = f.SpecHash[:12]
		}
		doc.Filters = append(doc.Filters, fs)
	}
	sort.Slice(doc.Filters, func(i, j int) bool { return doc.Filters[i].Name < doc.Filters[j].Name })
	if doc.Filters == nil {
		doc.Filters = []filterStatus{}
	}
	doc.Secrets = snap.Secrets.Names() // names only, never values
	if doc.OAuth = snap.OAuth.Stats(); doc.OAuth == nil {
		doc.OAuth = []oauth.Stats{}
	}
	return doc
}

func (a *admin) reload(w http.ResponseWriter, r *http.Request) {
	rev, err := a.g.Reload(r.Context())
	if err != nil {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"result": "error", "error": err.Error(), "revision": a.g.Status().Revision})
		return
	}
	writeJSON(w, 200, map[string]string{"result": "ok", "revision": rev})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	// The answers quote what clients sent (a deny reason, a label, a delivery's error): the
	// C1 controls encoding/json leaves raw are escaped, as the log escapes them.
	_, _ = w.Write(decisionlog.AppendControlsEscaped(nil, buf.Bytes()))
}
