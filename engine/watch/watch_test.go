package watch

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/decisionlog"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// watchConfig parses a [watch] table the way the gateway does.
func watchConfig(t testing.TB, body string) config.Watch {
	t.Helper()
	cfg, err := config.Parse("gateway.toml", []byte("[watch]\n"+body+`
[[route]]
name = "r"
path = "/r"
upstream = "http://127.0.0.1:1"
policy = "routes.r"
`))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Watch
}

func newTestWatcher(t testing.TB, body string) *Watcher {
	t.Helper()
	w, err := New(Options{Config: watchConfig(t, body), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

var forged = []string{"signature: signature mismatch"}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		outcome decisionlog.Outcome
		reasons []string
		want    string
	}{
		{"allowed", nil, "allowed"},
		{"denied", forged, "signature"},
		{"denied", []string{"signature: timestamp outside tolerance"}, "timestamp"},
		{"denied", []string{"signature: missing header webhook-timestamp"}, "signature"},
		{"denied", []string{"method GET is not accepted", "signature: signature mismatch"}, "signature"},
		{"denied", []string{"invalid token: signature, issuer, audience or lifetime"}, "token"},
		{"denied", []string{"missing bearer token"}, "token"},
		{"denied", []string{"invalid API key"}, "token"},
		{"denied", []string{`event "fork" is not accepted`}, "policy"},
		{"denied", nil, "policy"},
		{"filtered", nil, "policy"},
		{"rate_limited", nil, "rate_limit"},
		{"duplicate", nil, "replay"},
		{"in_flight", nil, "replay"},
	} {
		got, ok := classify(c.outcome, 0, c.reasons)
		if !ok || got.String() != c.want {
			t.Errorf("classify(%q, %q) = %v %v, want %s", c.outcome, c.reasons, got, ok, c.want)
		}
	}
	for _, o := range []decisionlog.Outcome{"error", "no_route", "upstream_error", "blocked", "unavailable"} {
		if _, ok := classify(o, 500, nil); ok {
			t.Errorf("classify(%q, 500) counts, want ignored", o)
		}
	}
	// What the gateway refuses for the request's own bytes is the client's.
	for _, c := range []struct {
		outcome decisionlog.Outcome
		status  int
	}{{"error", 400}, {"error", 415}, {"error", 422}, {"too_large", 413}, {"too_large", 431}} {
		if got, ok := classify(c.outcome, c.status, nil); !ok || got != ClassMalformed {
			t.Errorf("classify(%q, %d) = %v %v, want malformed", c.outcome, c.status, got, ok)
		}
	}
}

// TestBurstAgainstBaseline: a source refused a few times a window for hours builds a
// baseline and raises nothing; the same source refused ten times as often raises at once.
// The clock is the requests' own receive time, so hours pass in milliseconds.
func TestBurstAgainstBaseline(t *testing.T) {
	w := newTestWatcher(t, "window = \"1m\"\nbaseline = \"1h\"\nmin_events = 5\nratio = 4\nmax_deny_rate = 0\n")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	// Warm up below min_events (3 a minute: nothing can be raised), then 8 a minute.
	step := func(perMin int, minutes int) {
		for m := 0; m < minutes; m++ {
			for i := 0; i < perMin; i++ {
				w.Observe("r", "192.0.2.10", "denied", 0, forged, nil, now.Add(time.Duration(i)*time.Minute/time.Duration(perMin)))
				w.Observe("r", "192.0.2.11", "allowed", 0, nil, nil, now)
			}
			now = now.Add(time.Minute)
		}
	}
	step(3, 60)
	if n := w.Stats().Anomalies; n != 0 {
		t.Fatalf("3 refusals a minute, under min_events: %d anomalies", n)
	}
	// A rate that rises slowly, as a baseline follows it, then stays for hours.
	for r := 4; r <= 8; r++ {
		step(r, 60)
	}
	step(8, 180)
	if n := w.Stats().Anomalies; n != 0 {
		t.Fatalf("a steady 8 refusals a minute matching its baseline raised %d anomalies: %+v", n, w.Status(now).Recent)
	}
	// Now 40 a minute from the same source: past ratio × baseline (about 8) within the window.
	step(40, 1)
	st := w.Status(now)
	got := byScope(st.Recent)
	if len(st.Recent) != 2 || len(got[ScopeIP]) != 1 || len(got[ScopeRoute]) != 1 {
		t.Fatalf("burst: want one anomaly of the source and one of its route, got %+v", st.Recent)
	}
	a := got[ScopeIP][0]
	if a.Scope != ScopeIP || a.Source != "192.0.2.10" || a.Kind != "signature" || a.Rule != "ratio" || a.Baseline < 6 || a.Baseline > 10 || a.Count < 4*a.Baseline {
		t.Fatalf("anomaly %+v", a)
	}
	if st.Blocks == nil || len(st.Blocks) != 0 {
		t.Fatalf("block = false placed blocks: %+v", st.Blocks)
	}
}

// TestMaxDenyRate: a source whose baseline has learned a high rate still raises once it
// passes the absolute ceiling.
func TestMaxDenyRate(t *testing.T) {
	w := newTestWatcher(t, "window = \"10s\"\nbaseline = \"1m\"\nmin_events = 5\nratio = 100\nmax_deny_rate = 2\n")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for range 100 { // a baseline of 2 a window (under min_events, the previous window's share included)
		for i := 0; i < 2; i++ {
			w.Observe("r", "198.51.100.1", "rate_limited", 0, nil, nil, now.Add(time.Duration(i)*time.Second))
		}
		now = now.Add(10 * time.Second)
	}
	for i := 0; i < 15; i++ { // 15 in 10s: 1.5 a second, under the ceiling
		w.Observe("r", "198.51.100.1", "rate_limited", 0, nil, nil, now.Add(time.Duration(i)*600*time.Millisecond))
	}
	if n := w.Stats().Anomalies; n != 0 {
		t.Fatalf("1.5/s under max_deny_rate 2 and under ratio 100: %d anomalies", n)
	}
	now = now.Add(10 * time.Second)
	for i := 0; i < 25; i++ {
		w.Observe("r", "198.51.100.1", "rate_limited", 0, nil, nil, now.Add(time.Duration(i)*300*time.Millisecond))
	}
	st := w.Status(now.Add(8 * time.Second))
	ip := byScope(st.Recent)[ScopeIP]
	if len(ip) != 1 || ip[0].Rule != "max_deny_rate" || ip[0].Kind != "rate_limit" {
		t.Fatalf("over the ceiling: %+v", st.Recent)
	}
}

// TestRouteScopeCatchesDistributedAttack: a thousand IPs, each refused twice, raise nothing
// alone; the route's window does.
func TestRouteScopeCatchesDistributedAttack(t *testing.T) {
	w := newTestWatcher(t, "min_events = 20\nratio = 10\n")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 1000; i++ {
		ip := "10.1." + strconv.Itoa(i/250) + "." + strconv.Itoa(i%250)
		w.Observe("r", ip, "denied", 0, forged, nil, now)
		w.Observe("r", ip, "denied", 0, forged, nil, now)
	}
	st := w.Status(now)
	if len(st.Recent) != 1 || st.Recent[0].Scope != ScopeRoute || st.Recent[0].Source != "r" {
		t.Fatalf("want one route anomaly, got %+v", st.Recent)
	}
}

func byScope(as []Anomaly) map[Scope][]Anomaly {
	m := map[Scope][]Anomaly{}
	for _, a := range as {
		m[a.Scope] = append(m[a.Scope], a)
	}
	return m
}

func TestSenderScope(t *testing.T) {
	w := newTestWatcher(t, "min_events = 5\nblock = true\n")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	labels := map[string]any{"sender": "acme"}
	for i := 0; i < 5; i++ {
		// Five addresses, one verified sender replaying: only the sender stands out.
		w.Observe("r", "203.0.113."+strconv.Itoa(i), "duplicate", 0, nil, labels, now)
	}
	st := w.Status(now)
	var scopes []string
	for _, a := range st.Recent {
		scopes = append(scopes, string(a.Scope)+":"+a.Source+":"+a.Kind)
	}
	if strings.Join(scopes, ",") != "route:r:replay,sender:acme:replay" {
		t.Fatalf("anomalies %v, want the sender's and the route's, no address's", scopes)
	}
	if len(st.Blocks) != 0 {
		t.Fatalf("a sender is reported, never blocked: %+v", st.Blocks)
	}
}

// TestBlocksEscalateAndExpire uses the watcher's own clock for block ends.
func TestBlocksEscalateAndExpire(t *testing.T) {
	w := newTestWatcher(t, "window = \"1s\"\nbaseline = \"1m\"\nmin_events = 3\nblock = true\nblock_for = \"10s\"\nmax_block_for = \"25s\"\nnever_block = [\"192.0.2.0/24\"]\n")
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	burst := func(ip string) {
		for i := 0; i < 3; i++ {
			w.Observe("r", ip, "denied", 0, forged, nil, now)
		}
	}
	burst("198.51.100.7")
	if secs, refuse, marked := w.Blocked("198.51.100.7", now); !refuse || !marked || secs != 10 {
		t.Fatalf("after the burst: retry %d refuse %v marked %v, want 10s refused", secs, refuse, marked)
	}
	if _, refuse, _ := w.Blocked("198.51.100.8", now); refuse {
		t.Fatal("another address is blocked")
	}
	burst("192.0.2.9")
	if _, refuse, marked := w.Blocked("192.0.2.9", now); refuse || marked {
		t.Fatal("never_block address was blocked")
	}
	if ip := byScope(w.Status(now).Recent)[ScopeIP]; len(ip) != 2 || ip[0].Source != "192.0.2.9" || ip[0].Blocked {
		t.Fatalf("never_block still reports, unblocked: %+v", ip)
	}
	if _, refuse, _ := w.Blocked("198.51.100.7", now.Add(10*time.Second)); refuse {
		t.Fatal("block did not end after block_for")
	}
	// A repeat doubles block_for; a third is capped at max_block_for.
	for i, want := range []int64{20, 25} {
		now = now.Add(30 * time.Second)
		burst("198.51.100.7")
		if secs, refuse, _ := w.Blocked("198.51.100.7", now); !refuse || secs != want {
			t.Fatalf("repeat %d: retry %d refuse %v, want %ds", i+2, secs, refuse, want)
		}
	}
	if bl := w.Blocks(now); len(bl) != 1 || bl[0].Strikes != 3 {
		t.Fatalf("blocks %+v", bl)
	}
	if found, err := w.Lift(t.Context(), "198.51.100.7"); !found || err != nil {
		t.Fatalf("lift: %v %v", found, err)
	}
	if _, refuse, _ := w.Blocked("198.51.100.7", now); refuse {
		t.Fatal("lifted block still refuses")
	}
}

// TestSteadyRateFromColdStart: at the defaults, a source refused 30 times a minute from its
// first request is reported while the baseline learns its rate (every other window), then
// never again.
func TestSteadyRateFromColdStart(t *testing.T) {
	w := newTestWatcher(t, "")
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 30*120; i++ { // two hours
		w.Observe("r", "192.0.2.20", "denied", 0, forged, nil, start.Add(time.Duration(i)*2*time.Second))
	}
	var last time.Time
	n := 0
	for _, a := range w.Status(start).Recent {
		if a.Scope == ScopeIP {
			n++
			if a.At.After(last) {
				last = a.At
			}
		}
	}
	t.Logf("%d anomalies, the last %v after the first request", n, last.Sub(start))
	if n == 0 || n > 5 || last.Sub(start) > 10*time.Minute {
		t.Fatalf("%d anomalies, the last at %v: want a few, all within the first ten minutes", n, last.Sub(start))
	}
}

// TestAlertsNeverBlockRequests: a receiver that never answers holds one alert; the others
// wait in the bounded queue or are dropped (counted), and no Observe waits for any of it.
func TestAlertsNeverBlockRequests(t *testing.T) {
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-hang }))
	defer srv.Close()
	defer close(hang)
	w := runAlertWatcher(t, srv.URL, io.Discard)
	start := time.Now()
	now := time.Now()
	for i := 0; i < 400; i++ {
		w.Observe("", "198.51.100."+strconv.Itoa(i%250)+"-"+strconv.Itoa(i), "denied", 0, forged, nil, now)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("400 anomalies took %v to observe with a hanging receiver", el)
	}
	st := w.Stats()
	if st.Anomalies != 400 || st.AlertsDropped < 400-alertQueue-1 || st.AlertsSent != 0 {
		t.Fatalf("stats %+v: want 400 anomalies, at least %d alerts dropped, none sent", st, 400-alertQueue-1)
	}
}

// runAlertWatcher runs, until the test ends, a watcher raising an anomaly at every refusal
// and alerting alertURL, logging to logs.
func runAlertWatcher(t *testing.T, alertURL string, logs io.Writer) *Watcher {
	t.Helper()
	cfg := watchConfig(t, "min_events = 1\nalert_url = \""+alertURL+"\"\nalert_secret = \"alerts\"\n[secrets]\nalerts = {env = \"X\"}\n")
	w, err := New(Options{Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Secret: func(string) ([]byte, bool) { return []byte("whsec_c2VjcmV0"), true }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// TestAlertFailureLogsNoSecretOfTheURL: an alert URL's path or query may be its secret (a
// Slack or Discord webhook's): an alert the receiver refuses is logged with the URL's
// scheme and host only.
func TestAlertFailureLogsNoSecretOfTheURL(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(400) }))
	defer srv.Close()
	var logs testutil.Buffer
	w := runAlertWatcher(t, srv.URL+"/services/T0/B0/SECRETPATH?token=QUERYTOKEN", &logs)
	w.Observe("r", "198.51.100.1", "denied", 0, forged, nil, time.Now())
	for end := time.Now().Add(5 * time.Second); w.Stats().AlertsFailed == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the refused alert was never counted")
		}
	}
	out := logs.String()
	if !strings.Contains(out, "anomaly alert not delivered") || !strings.Contains(out, srv.URL) {
		t.Fatalf("no failure line naming the receiver's host: %s", out)
	}
	if strings.Contains(out, "SECRETPATH") || strings.Contains(out, "QUERYTOKEN") {
		t.Errorf("the log holds the alert URL's secret: %s", out)
	}
}
