package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
)

// mountDeliveries serves the delivery store's inspection and replay API.
func (a *admin) mountDeliveries() {
	a.mux.HandleFunc("GET /-/deliveries", a.auth(a.withStore(a.listDeliveries)))
	a.mux.HandleFunc("GET /-/deliveries/{id}", a.auth(a.withStore(a.showDelivery)))
	a.mux.HandleFunc("POST /-/deliveries/{id}/replay", a.auth(a.withStore(a.replayDelivery)))
	a.mux.HandleFunc("POST /-/deliveries/replay", a.auth(a.withStore(a.replayDeliveries)))
	a.mux.HandleFunc("DELETE /-/deliveries/{id}", a.auth(a.withStore(a.purgeDelivery)))
	a.mux.HandleFunc("POST /-/deliveries/rekey", a.auth(a.withStore(a.rekeyDeliveries)))
}

// withStore answers 404 when the gateway opened no delivery store (no queued route).
func (a *admin) withStore(h func(w http.ResponseWriter, r *http.Request, d *delivery.Dispatcher)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := a.g.deliveries
		if d == nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no delivery store: no route has delivery = \"queued\""})
			return
		}
		h(w, r, d)
	}
}

// deliveryDoc is one delivery as the admin API shows it.
type deliveryDoc struct {
	ID         string    `json:"id"`
	Route      string    `json:"route"`
	DecisionID string    `json:"decision_id"`
	ReceivedAt time.Time `json:"received_at"`
	Method     string    `json:"method"`
	URI        string    `json:"uri"` // the path; with the query only beside the body (docOf)
	// QueryWithheld says the target has a query, left out of URI.
	QueryWithheld bool       `json:"query_withheld,omitempty"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	NextAt        *time.Time `json:"next_at,omitempty"` // pending only
	UpdatedAt     time.Time  `json:"updated_at"`
	LastStatus    int        `json:"last_status,omitempty"`
	LastError     string     `json:"last_error,omitempty"`
	BodyBytes     *int       `json:"body_bytes,omitempty"`

	AttemptLog []attemptDoc `json:"attempt_log,omitempty"`
	// Headers and Body (as text, or BodyBase64 when it is not UTF-8) only with
	// inspect_bodies and the admin token.
	Headers    [][2]string `json:"headers,omitempty"`
	Body       *string     `json:"body,omitempty"`
	BodyBase64 string      `json:"body_base64,omitempty"`
}

type attemptDoc struct {
	N         int       `json:"n"`
	At        time.Time `json:"at"`
	Status    int       `json:"status,omitempty"`
	LatencyMS float64   `json:"latency_ms"`
	Error     string    `json:"error,omitempty"`
}

// docOf is r as listed and shown. The target's query is left out: it may carry a credential
// (an API key a policy reads from input.request.query), and it is sealed at rest and never
// in the decision log, so it is shown only with the headers and the body (show, with
// inspect_bodies and the token). A path whose segment the route's policy reads as a
// credential is shown masked as the decision log shows it (loggedPath, with snap the serving
// snapshot).
func docOf(r *delivery.Record, snap *snapshot.Snapshot) deliveryDoc {
	uri, query, _ := strings.Cut(r.URI, "?")
	uri = loggedPath(snap, r.Route, uri)
	d := deliveryDoc{ID: r.ID, Route: r.Route, DecisionID: r.DecisionID, ReceivedAt: r.ReceivedAt.UTC(), Method: r.Method, URI: uri, QueryWithheld: query != "",
		State: string(r.State), Attempts: r.Attempts, UpdatedAt: r.UpdatedAt.UTC(), LastStatus: r.LastStatus, LastError: r.LastError}
	if r.State == delivery.StatePending {
		next := r.NextAt.UTC()
		d.NextAt = &next
	}
	return d
}

// deliveryQuery reads route, state, since and until (RFC 3339, or a duration meaning
// that long ago) and limit from the query string.
func deliveryQuery(v url.Values, now time.Time) (delivery.Query, error) {
	q := delivery.Query{Route: v.Get("route"), State: delivery.State(v.Get("state"))}
	if q.State != "" && !q.State.Valid() {
		return q, fmt.Errorf("state must be pending, delivered or dead, not %q", q.State)
	}
	for _, p := range []struct {
		key string
		t   *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		s := v.Get(p.key)
		if s == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339, s); err == nil {
			// The stores compare Unix nanoseconds: a time outside 1677–2262 would wrap
			// around (until=1600 read as 2184), and the zero time is no bound at all, so a
			// bulk replay that looked narrow would take every delivery.
			if t.Before(time.Unix(0, math.MinInt64)) || t.After(time.Unix(0, math.MaxInt64)) {
				return q, fmt.Errorf("%s must be a time from 1678 to 2262, not %q", p.key, s)
			}
			*p.t = t
		} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			*p.t = now.Add(-d)
		} else {
			return q, fmt.Errorf("%s must be an RFC 3339 time or a duration ago (\"1h\"), not %q", p.key, s)
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			return q, fmt.Errorf("limit must be 1 to 10000, not %q", s)
		}
		q.Limit = n
	}
	return q, nil
}

func (a *admin) listDeliveries(w http.ResponseWriter, r *http.Request, d *delivery.Dispatcher) {
	q, err := deliveryQuery(r.URL.Query(), time.Now())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	rs, err := d.Store().List(r.Context(), q)
	if err != nil {
		a.storeError(w, err)
		return
	}
	snap := a.g.snaps.Acquire()
	if snap != nil {
		defer snap.Release()
	}
	out := make([]deliveryDoc, 0, len(rs))
	for _, rec := range rs {
		out = append(out, docOf(rec, snap))
	}
	writeJSON(w, 200, map[string]any{"deliveries": out})
}

func (a *admin) showDelivery(w http.ResponseWriter, r *http.Request, d *delivery.Dispatcher) {
	rec, attempts, err := d.Store().Get(r.Context(), r.PathValue("id"))
	if err != nil {
		a.storeError(w, err)
		return
	}
	snap := a.g.snaps.Acquire()
	if snap != nil {
		defer snap.Release()
	}
	doc := docOf(rec, snap)
	n := len(rec.Body)
	doc.BodyBytes = &n
	for _, at := range attempts {
		doc.AttemptLog = append(doc.AttemptLog, attemptDoc{N: at.N, At: at.At.UTC(), Status: at.Status, LatencyMS: float64(at.Latency.Microseconds()) / 1000, Error: at.Error})
	}
	// Bodies and headers carry the providers' payloads and signatures: shown only when the
	// operator asked for it and the admin API is behind a token.
	if a.token != "" && a.g.snaps.Load().Config.Delivery.InspectBodies {
		doc.URI, doc.QueryWithheld = rec.URI, false
		for _, h := range rec.Headers {
			doc.Headers = append(doc.Headers, [2]string{h.Name, h.Value})
		}
		if utf8.Valid(rec.Body) {
			s := string(rec.Body)
			doc.Body = &s
		} else {
			doc.BodyBase64 = base64.StdEncoding.EncodeToString(rec.Body)
		}
	}
	writeJSON(w, 200, doc)
}

func (a *admin) replayDelivery(w http.ResponseWriter, r *http.Request, d *delivery.Dispatcher) {
	if err := d.Store().Replay(r.Context(), r.PathValue("id"), time.Now()); err != nil {
		a.storeError(w, err)
		return
	}
	d.Wake()
	writeJSON(w, 200, map[string]int{"replayed": 1})
}

func (a *admin) replayDeliveries(w http.ResponseWriter, r *http.Request, d *delivery.Dispatcher) {
	v := r.URL.Query()
	q, err := deliveryQuery(v, time.Now())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	// Checked on what was parsed, not on the parameters given: an empty or unbounded value
	// would pass as a filter and select every delivery.
	if q.Route == "" && q.State == "" && q.Since.IsZero() && q.Until.IsZero() {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "a bulk replay needs at least one of route, state, since, until"})
		return
	}
	if v.Has("limit") {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "a bulk replay takes every delivery its filter selects: limit does not apply (narrow it with since and until, or replay by id)"})
		return
	}
	n, err := d.Store().ReplayMatching(r.Context(), q, time.Now())
	if err != nil {
		a.storeError(w, err)
		return
	}
	d.Wake()
	writeJSON(w, 200, map[string]int{"replayed": n})
}

func (a *admin) purgeDelivery(w http.ResponseWriter, r *http.Request, d *delivery.Dispatcher) {
	if err := d.Store().Purge(r.Context(), r.PathValue("id")); err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, 200, map[string]int{"purged": 1})
}

// rekeyer is a store that moves every delivery to its first encryption key
// (delivery.Sealed's).
type rekeyer interface {
	Rekey(ctx context.Context) (int, error)
}

// rekeyDeliveries reseals every delivery under the first of encryption_keys, so that the
// others can be retired.
func (a *admin) rekeyDeliveries(w http.ResponseWriter, r *http.Request, d *delivery.Dispatcher) {
	rk, ok := d.Store().(rekeyer)
	if !ok {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "no [delivery] encryption_keys: there is no key to seal with"})
		return
	}
	n, err := rk.Rekey(r.Context())
	if mk := (*delivery.MissingKeyError)(nil); errors.As(err, &mk) {
		// The error names the delivery and the key, never a value.
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "resealed": n})
		return
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, 200, map[string]int{"resealed": n})
}

func (a *admin) storeError(w http.ResponseWriter, err error) {
	if errors.Is(err, delivery.ErrNotFound) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no such delivery"})
		return
	}
	a.g.log.Warn("delivery store failed an admin request", "err", err)
	writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "delivery store unavailable"})
}
