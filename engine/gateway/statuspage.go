package gateway

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"

	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/watch"
)

// statusPage is the admin listener's "/": one static page, no build step. It holds no data:
// its script polls /-/status and /-/recent (with the admin token, asked for on a 401 and
// kept in the tab's sessionStorage) and renders every value as text, never as HTML, because
// paths and reasons come from clients.
//
//go:embed statuspage.html
var statusPage []byte

// statusPageCSP allows exactly the page's own inline script and style (by hash) and requests
// to its origin: an injected script or a foreign resource does not run or load.
var statusPageCSP = func() string {
	hash := func(open, close string) string {
		i := bytes.Index(statusPage, []byte(open))
		j := bytes.Index(statusPage, []byte(close))
		if i < 0 || j < i {
			panic("gateway: statuspage.html lacks " + open)
		}
		sum := sha256.Sum256(statusPage[i+len(open) : j])
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	return "default-src 'none'; script-src " + hash("<script>", "</script>") +
		"; style-src " + hash("<style>", "</style>") +
		"; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}()

// mountObservability adds /metrics, the status page and its data to the admin mux.
func (a *admin) mountObservability() {
	if a.g.obs == nil {
		return
	}
	// Metrics name routes, filters and the revision: behind the admin token like /-/status.
	a.mux.HandleFunc("GET /metrics", a.auth(a.g.obs.metrics.Handler().ServeHTTP))
	a.mux.HandleFunc("GET /{$}", a.statusPage)
	a.mux.HandleFunc("GET /-/recent", a.auth(a.recent))
}

func (a *admin) statusPage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", statusPageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(statusPage)
}

// recentDoc is /-/recent: what the status page shows that changes every second.
type recentDoc struct {
	Now    int64 `json:"now"`
	Totals struct {
		Allowed uint64 `json:"allowed"`
		Denied  uint64 `json:"denied"`
		Failed  uint64 `json:"failed"`
	} `json:"totals"`
	Log struct {
		Enabled     bool   `json:"enabled"`
		Written     uint64 `json:"written"`
		Dropped     uint64 `json:"dropped"`
		WriteErrors uint64 `json:"write_errors"`
	} `json:"log"`
	Reload struct {
		Revision string `json:"revision"`
		Reloads  uint64 `json:"reloads"`
		Failures uint64 `json:"failures"`
		LastOK   bool   `json:"last_ok"`
	} `json:"reload"`
	Rates     []rateSample      `json:"rates"`
	Filters   []filterPool      `json:"filters"`
	Decisions []decisionSummary `json:"decisions"`
	// Watch is the watcher's anomalies and blocks; absent when watching is off.
	Watch *watch.Status `json:"watch,omitempty"`
	// Deliveries is the delivery store's depth per queued route; absent without a store.
	Deliveries []routeDepth `json:"deliveries,omitempty"`
	// DeadLetters is the newest dead deliveries, for the page's replay buttons; absent
	// without a store or a dead delivery.
	DeadLetters []deadLetter `json:"dead_letters,omitempty"`
}

type filterPool struct {
	Name      string `json:"name"`
	Pool      int    `json:"pool"`
	Live      int    `json:"live"`
	Idle      int    `json:"idle"`
	InUse     int    `json:"in_use"`
	Waits     uint64 `json:"waits"`
	Discarded uint64 `json:"discarded"`
}

// decisionSummary is the part of a decision-log record the page lists.
type decisionSummary struct {
	DecisionID string   `json:"decision_id"`
	Timestamp  string   `json:"timestamp"`
	Route      string   `json:"route"`
	RemoteIP   string   `json:"remote_ip"`
	Outcome    string   `json:"outcome"`
	Status     int      `json:"status"`
	Reasons    []string `json:"reasons"`
	Error      string   `json:"error,omitempty"`
	Request    struct {
		Method string `json:"method"`
		Path   string `json:"path"`
	} `json:"request"`
	Shadow *struct {
		Policy string `json:"policy"`
		Agree  bool   `json:"agree"`
	} `json:"shadow,omitempty"`
	TotalUS int64 `json:"total_us"`
}

func (a *admin) recent(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.g.recentDoc())
}

func (g *Gateway) recentDoc() *recentDoc {
	o := g.obs
	doc := &recentDoc{Now: time.Now().Unix(), Rates: o.rates.snapshot(), Filters: []filterPool{}, Decisions: []decisionSummary{}}
	doc.Totals.Allowed, doc.Totals.Denied, doc.Totals.Failed = o.metrics.Totals()
	st := g.dlog.Stats()
	doc.Log.Enabled = g.dlog != nil
	doc.Log.Written, doc.Log.Dropped, doc.Log.WriteErrors = st.Written, st.Dropped, st.WriteErrors
	if rs, ok := g.reloadStats(); ok {
		doc.Reload.Revision, doc.Reload.Reloads, doc.Reload.Failures, doc.Reload.LastOK = rs.Revision, rs.Reloads, rs.Failures, rs.LastOK
	}
	if doc.Rates == nil {
		doc.Rates = []rateSample{}
	}
	if g.sources != nil {
		ws := g.sources.Status(time.Now())
		doc.Watch = &ws
	}
	g.filterStats(func(name string, fs filter.Stats) {
		doc.Filters = append(doc.Filters, filterPool{Name: name, Pool: fs.Pool, Live: fs.Live, Idle: fs.Idle, InUse: fs.InUse, Waits: fs.Waits, Discarded: fs.Discarded})
	})
	for _, line := range o.recent.snapshot() {
		var rec struct {
			decisionSummary
			Timings struct {
				Total int64 `json:"total"`
			} `json:"timings_us"`
		}
		if json.Unmarshal(line, &rec) != nil {
			continue
		}
		rec.decisionSummary.TotalUS = rec.Timings.Total
		doc.Decisions = append(doc.Decisions, rec.decisionSummary)
	}
	doc.Deliveries = g.deliveryDepth()
	doc.DeadLetters = g.deadLetters(doc.Deliveries)
	return doc
}
