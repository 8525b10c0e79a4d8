package decisionlog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/nametab"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

func sampleRecord() *Record {
	r := &Record{
		DecisionID: "0123456789abcdef0123456789abcdef", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		Route: "github", Policy: "routes.github", Revision: "rev1", PolicyRevision: "prev1", RemoteIP: "198.51.100.7",
		Method: "POST", Path: "/hooks/github", Outcome: OutcomeDenied, Status: 401,
		Reasons: []string{"signature: signature mismatch"},
		Labels:  map[string]any{"event": "push"},
		Filters: []FilterResult{{Name: "guard", Outcome: FilterNext, Micros: 12}},
		Headers: []Header{
			{"Authorization", "Bearer top-secret"}, {"Cookie", "session=abc"}, {"X-Hub-Signature-256", "sha256=feed"},
			{"Stripe-Signature", "t=1,v1=beef"}, {"X-Internal-Trace", "trace-me"}, {"X-Tenant", "acme"}, {"X-GitHub-Event", "push"},
		},
		Result:       Result{Evaluated: true, Allow: false, Deny: []string{"signature: signature mismatch"}, Status: 401},
		Shadow:       Shadow{Policy: "routes.github_v2", Allow: false, Deny: []string{"stricter"}, Status: 403},
		PolicyMicros: 40, FilterMicros: 12, TotalMicros: 90,
	}
	r.CaptureBody([]byte(`{"zen":"Design for failure."}`), 8)
	return r
}

type logged struct {
	DecisionID string         `json:"decision_id"`
	Timestamp  time.Time      `json:"timestamp"`
	Path       string         `json:"path"`
	Policy     string         `json:"policy"`
	Revision   string         `json:"revision"`
	Bundles    map[string]any `json:"bundles"`
	Route      string         `json:"route"`
	RemoteIP   string         `json:"remote_ip"`
	Outcome    string         `json:"outcome"`
	Status     int            `json:"status"`
	Reasons    []string       `json:"reasons"`
	Result     *struct {
		Allow  bool     `json:"allow"`
		Deny   []string `json:"deny"`
		Status int      `json:"status"`
	} `json:"result"`
	Labels  map[string]any `json:"labels"`
	Request struct {
		Method        string            `json:"method"`
		Path          string            `json:"path"`
		Headers       map[string]string `json:"headers"`
		Body          *string           `json:"body"`
		BodyBytes     int               `json:"body_bytes"`
		BodyTruncated bool              `json:"body_truncated"`
	} `json:"request"`
	Filters []map[string]any `json:"filters"`
	Shadow  *struct {
		Policy string   `json:"policy"`
		Allow  bool     `json:"allow"`
		Deny   []string `json:"deny"`
		Status int      `json:"status"`
		Agree  bool     `json:"agree"`
		Error  string   `json:"error"`
	} `json:"shadow"`
	Masked  []string         `json:"masked"`
	Metrics map[string]int64 `json:"metrics"`
	Timings map[string]int64 `json:"timings_us"`
}

func decode(t *testing.T, line []byte) logged {
	t.Helper()
	if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("not one line: %q", line)
	}
	var l logged
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&l); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, line)
	}
	return l
}

func TestRecordFields(t *testing.T) {
	r := sampleRecord()
	line := r.appendJSON(nil, NewMask([]string{"X-Internal-*"}), nil, nil)
	l := decode(t, line)
	if l.DecisionID != r.DecisionID || !l.Timestamp.Equal(r.Time) || l.Route != "github" || l.RemoteIP != "198.51.100.7" {
		t.Errorf("identity fields: %+v", l)
	}
	// OPA's names: path is the queried document, bundles the policy revision.
	if l.Path != "routes/github" || l.Policy != "routes.github" || l.Revision != "rev1" {
		t.Errorf("path/policy/revision: %q %q %q", l.Path, l.Policy, l.Revision)
	}
	if b, _ := json.Marshal(l.Bundles); string(b) != `{"policies":{"revision":"prev1"}}` {
		t.Errorf("bundles: %s", b)
	}
	if l.Result == nil || l.Result.Allow || l.Result.Status != 401 || len(l.Result.Deny) != 1 {
		t.Errorf("result: %+v", l.Result)
	}
	if l.Outcome != string(OutcomeDenied) || l.Status != 401 || len(l.Reasons) != 1 || l.Labels["event"] != "push" {
		t.Errorf("decision: %+v", l)
	}
	if l.Request.Method != "POST" || l.Request.Path != "/hooks/github" {
		t.Errorf("request: %+v", l.Request)
	}
	if l.Request.Body == nil || *l.Request.Body != `{"zen":"` || l.Request.BodyBytes != 29 || !l.Request.BodyTruncated {
		t.Errorf("body capture: %+v", l.Request)
	}
	if l.Shadow == nil || l.Shadow.Policy != "routes.github_v2" || l.Shadow.Agree || l.Shadow.Status != 403 || l.Shadow.Deny[0] != "stricter" {
		t.Errorf("shadow: %+v", l.Shadow)
	}
	if l.Metrics["timer_rego_query_eval_ns"] != 40000 || l.Metrics["timer_server_handler_ns"] != 90000 {
		t.Errorf("metrics: %v", l.Metrics)
	}
	if l.Timings["policy"] != 40 || l.Timings["filters"] != 12 || l.Timings["total"] != 90 {
		t.Errorf("timings: %v", l.Timings)
	}
	if len(l.Filters) != 1 || l.Filters[0]["name"] != "guard" || l.Filters[0]["outcome"] != "next" {
		t.Errorf("filters: %v", l.Filters)
	}
}

func TestMasking(t *testing.T) {
	r := sampleRecord()
	cases := []struct {
		name      string
		mask      *Mask
		masked    []string
		clear     []string
		maskedPtr int
	}{
		{"defaults", defaultMask, []string{"Authorization", "Cookie", "X-Hub-Signature-256", "Stripe-Signature"}, []string{"X-Internal-Trace", "X-Tenant", "X-GitHub-Event"}, 4},
		{"prefix and exact, any case", NewMask([]string{"x-internal-*", "X-TENANT"}), []string{"Authorization", "X-Internal-Trace", "X-Tenant"}, []string{"X-GitHub-Event"}, 6},
		{"everything", NewMask([]string{"*"}), []string{"Authorization", "X-Tenant", "X-GitHub-Event"}, nil, 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			line := r.appendJSON(nil, c.mask, nil, nil)
			l := decode(t, line)
			for _, h := range c.masked {
				if l.Request.Headers[h] != "***" {
					t.Errorf("%s = %q, want masked", h, l.Request.Headers[h])
				}
			}
			for _, h := range c.clear {
				if l.Request.Headers[h] == "***" || l.Request.Headers[h] == "" {
					t.Errorf("%s = %q, want its value", h, l.Request.Headers[h])
				}
			}
			for _, secret := range []string{"top-secret", "session=abc", "feed", "beef"} {
				if bytes.Contains(line, []byte(secret)) {
					t.Errorf("line leaks %q: %s", secret, line)
				}
			}
			if len(l.Masked) != c.maskedPtr || l.Masked[0] != "/request/headers/Authorization" {
				t.Errorf("masked pointers: %v", l.Masked)
			}
		})
	}
}

// TestDefaultMaskNames: the names services carry credentials under are masked with no
// [log] mask (a policy that compares such a header itself hands it to no builtin), and
// the headers a webhook's routing and tracing read stay in the log.
func TestDefaultMaskNames(t *testing.T) {
	for _, n := range []string{
		"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Hub-Signature-256", "X-Shopify-Hmac-Sha256",
		"X-Api-Key", "Ocp-Apim-Subscription-Key", "X-Functions-Key", "X-Auth-Key", "X-Access-Key", "X-Private-Key",
		"Authentication", "X-Auth", "X-Credential", "X-Passwd", "X-Session-Id", "X-Client-Secret", "X-Gitlab-Token",
	} {
		if !defaultMask.Masks(n) {
			t.Errorf("%s is written in the clear by default", n)
		}
	}
	for _, n := range []string{"Host", "Content-Type", "User-Agent", "X-GitHub-Event", "X-GitHub-Delivery", "X-Request-Id", "Webhook-Id", "X-Tenant"} {
		if defaultMask.Masks(n) {
			t.Errorf("%s is masked by default", n)
		}
	}
}

// TestSensitiveValuesAreMasked: a header that carries a value the policy's builtins were
// handed as a credential is masked whatever its name: one that is the value, or contains
// it, when the value is long enough to look for; a short value masks only a header that is
// exactly it, so a one-letter "key" cannot hide the rest of the request from the log.
func TestSensitiveValuesAreMasked(t *testing.T) {
	r := &Record{DecisionID: "x", Time: time.Now(), Method: "POST", Path: "/k", Headers: []Header{
		{"X-Acme-Client", "k3y-0f-the-client"}, {"X-Forwarded-Key", "Bearer k3y-0f-the-client"},
		{"X-Short", "ab"}, {"X-Has-Short", "xabx"}, {"X-Event", "push"},
	}, Sensitive: []string{"k3y-0f-the-client", "ab"}}
	line := r.appendJSON(nil, defaultMask, nil, nil)
	l := decode(t, line)
	for _, h := range []string{"X-Acme-Client", "X-Forwarded-Key", "X-Short"} {
		if l.Request.Headers[h] != "***" {
			t.Errorf("%s = %q, want masked", h, l.Request.Headers[h])
		}
	}
	for h, v := range map[string]string{"X-Has-Short": "xabx", "X-Event": "push"} {
		if l.Request.Headers[h] != v {
			t.Errorf("%s = %q, want %q", h, l.Request.Headers[h], v)
		}
	}
	if want := []string{"/request/headers/X-Acme-Client", "/request/headers/X-Forwarded-Key", "/request/headers/X-Short"}; !slices.Equal(l.Masked, want) {
		t.Errorf("masked %v, want %v", l.Masked, want)
	}
	if bytes.Contains(line, []byte("k3y-0f")) {
		t.Errorf("line leaks the key: %s", line)
	}
}

func TestRecordOmitsWhatDidNotHappen(t *testing.T) {
	r := &Record{DecisionID: "x", Time: time.Now(), Method: "GET", Path: "/nope", Outcome: OutcomeNoRoute, Status: 404}
	line := r.AppendJSON(nil)
	l := decode(t, line)
	for _, k := range []string{`"path":"`, `"result"`, `"shadow"`, `"body"`, `"masked"`, `"bundles"`} {
		if k == `"path":"` {
			if l.Path != "" {
				t.Errorf("path %q for a request without a route", l.Path)
			}
			continue
		}
		if bytes.Contains(line, []byte(k)) {
			t.Errorf("%s present: %s", k, line)
		}
	}
	if l.Request.Path != "/nope" {
		t.Errorf("request path %q", l.Request.Path)
	}
}

func TestAppendStringEscapes(t *testing.T) {
	in := "a\"b\\c\n\r\t\x00<>&\u2028\xff\x7f\u009b" + "é"
	b := AppendString(nil, in)
	var out string
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if want := strings.ToValidUTF8(in, "\ufffd"); out != want {
		t.Fatalf("round trip %q, want %q", out, want)
	}
	if bytes.ContainsAny(b, "\n\x7f") || bytes.Contains(b, []byte("\u2028")) || bytes.Contains(b, []byte("\u009b")) {
		t.Fatalf("unescaped: %s", b)
	}
	// Not HTML: these take one byte each, not six.
	if !bytes.Contains(b, []byte("<>&")) {
		t.Fatalf("'<', '>' and '&' escaped: %s", b)
	}
	if bb := AppendString(nil, []byte(in)); !bytes.Equal(bb, b) {
		t.Fatalf("[]byte form differs: %s vs %s", bb, b)
	}
}

func TestRecordReset(t *testing.T) {
	r := sampleRecord()
	r.Reset()
	if r.Body != nil || r.Shadow.Policy != "" || r.Result.Evaluated || len(r.Headers) != 0 {
		t.Fatalf("reset left state: %+v", r)
	}
	r.CaptureBody(nil, 16)
	if r.Body == nil || len(r.Body) != 0 {
		t.Fatalf("an empty captured body must be logged as \"\": %#v", r.Body)
	}
	if l := decode(t, r.AppendJSON(nil)); l.Request.Body == nil || *l.Request.Body != "" {
		t.Fatalf("empty body: %+v", l.Request)
	}
}

func TestLoggerWritesAndSubscribers(t *testing.T) {
	var buf testutil.Buffer
	l := New(&buf, nil, Options{Mask: []string{"X-Tenant"}})
	var mu sync.Mutex
	var seen [][]byte
	cancel := l.Subscribe(func(line []byte) {
		mu.Lock()
		seen = append(seen, append([]byte(nil), line...))
		mu.Unlock()
	})
	for range 3 {
		l.Log(sampleRecord())
	}
	testutil.WaitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 3 })
	cancel()
	cancel() // idempotent
	l.Log(sampleRecord())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Written != 4 || st.Dropped != 0 || st.WriteErrors != 0 {
		t.Fatalf("stats %+v, want 4 written", st)
	}
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4", len(lines))
	}
	if l := decode(t, append(lines[0], '\n')); l.Request.Headers["X-Tenant"] != "***" {
		t.Fatalf("Options.Mask not applied: %v", l.Request.Headers)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || !bytes.Equal(seen[0], append(lines[0], '\n')) {
		t.Fatalf("subscriber saw %d lines after cancel, want 3; first %q", len(seen), seen[0])
	}
	l.Log(sampleRecord()) // after Close: dropped silently, no panic
}

func TestReopenFollowsLogrotate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "decisions.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.Log(sampleRecord())
	testutil.WaitFor(t, func() bool { return l.Stats().Written == 1 })
	// logrotate: move the file, then signal.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	l.Log(sampleRecord()) // queued before Reopen: still goes to the moved file
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	l.Log(sampleRecord())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	if n := bytes.Count(old, []byte("\n")); n != 2 {
		t.Errorf("rotated file has %d records, want 2", n)
	}
	if n := bytes.Count(cur, []byte("\n")); n != 1 {
		t.Errorf("reopened file has %d records, want 1", n)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("reopened file mode %v, want 0600", st.Mode().Perm())
	}
	if st := l.Stats(); st.Reopens != 1 {
		t.Errorf("reopens %d", st.Reopens)
	}
	if err := l.Reopen(); err != ErrClosed {
		t.Errorf("Reopen after Close: %v", err)
	}
	// A log on stdout or another writer has nothing to reopen.
	w := New(io.Discard, nil, Options{})
	defer w.Close()
	if err := w.Reopen(); err != nil {
		t.Errorf("Reopen of a writer log: %v", err)
	}
}

func TestReopenFailureKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "decisions.log")
	if err := os.Mkdir(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Dir(path), filepath.Join(dir, "moved")); err != nil {
		t.Fatal(err)
	}
	if err := l.Reopen(); err == nil {
		t.Fatal("Reopen into a missing directory succeeded")
	}
	l.Log(sampleRecord())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "moved", "decisions.log")); bytes.Count(b, []byte("\n")) != 1 {
		t.Fatalf("the old file did not keep receiving records: %q", b)
	}
}

// TestFullDiskIsCountedNotBlocking writes to /dev/full, where every write fails with ENOSPC.
func TestFullDiskIsCountedNotBlocking(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	l, err := Open("/dev/full", Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 1000 {
		l.Log(sampleRecord())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("1000 Log calls on a full disk took %v", d)
	}
	_ = l.Close()
	st := l.Stats()
	if st.WriteErrors == 0 {
		t.Fatalf("no write errors counted on a full disk: %+v", st)
	}
}

// blockedWriter never returns from Write until released: a hung disk (NFS, a stalled pipe).
// blockedWriter is a hung disk: its first Write says so on started, and no Write returns
// until release is closed.
type blockedWriter struct {
	started chan struct{}
	once    *sync.Once
	release chan struct{}
}

func (b blockedWriter) Write(p []byte) (int, error) {
	b.once.Do(func() { close(b.started) })
	<-b.release
	return len(p), nil
}

func TestHungDiskDropsAndCounts(t *testing.T) {
	bw := blockedWriter{started: make(chan struct{}), once: &sync.Once{}, release: make(chan struct{})}
	l := New(bw, nil, Options{})
	r := sampleRecord()
	start := time.Now()
	// Log until the writer is stuck in its first Write (it wakes on a full batch or a timer)…
	n := 0
	for stuck := false; !stuck; {
		l.Log(r)
		n++
		select {
		case <-bw.started:
			stuck = true
		default:
			if time.Since(start) > 10*time.Second {
				t.Fatal("the writer never wrote")
			}
			if n%64 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	// …then a queue's worth more: none can be taken, so the ones past the bound are dropped,
	// and Log never waits for the disk.
	more := time.Now()
	for range queueLen + 1000 {
		l.Log(r)
		n++
	}
	if d := time.Since(more); d > 5*time.Second {
		t.Fatalf("Log blocked behind a hung writer: %v", d)
	}
	if l.Stats().Dropped == 0 {
		t.Fatalf("nothing dropped with the writer hung: %+v", l.Stats())
	}
	close(bw.release)
	_ = l.Close()
	st := l.Stats()
	if st.Dropped == 0 || st.Written+st.Dropped != uint64(n) {
		t.Fatalf("stats %+v: written+dropped must be %d with drops", st, n)
	}
}

func TestNilLogger(t *testing.T) {
	var l *Logger
	l.Log(sampleRecord())
	l.Subscribe(func([]byte) {})()
	if err := l.Reopen(); err != nil {
		t.Fatal(err)
	}
	if l.Stats() != (Stats{}) || l.Close() != nil {
		t.Fatal("nil logger must be inert")
	}
	if l, err := Open("off", Options{}); l != nil || err != nil {
		t.Fatalf("off: %v %v", l, err)
	}
}

// countingWriter counts Write calls.
type countingWriter struct {
	mu     sync.Mutex
	writes int
	b      bytes.Buffer
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	return c.b.Write(p)
}

// TestWritesInBatches: records reach the writer in batches of about flushAt bytes, one Write
// each, in the order they were logged.
func TestWritesInBatches(t *testing.T) {
	w := &countingWriter{}
	l := New(w, nil, Options{})
	const n = 2000
	r := sampleRecord()
	for i := range n {
		r.DecisionID = strconv.Itoa(i)
		l.Log(r)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(w.b.Bytes()), []byte("\n"))
	if len(lines) != n {
		t.Fatalf("%d lines, want %d", len(lines), n)
	}
	for i, line := range lines {
		if got := decode(t, append(line, '\n')).DecisionID; got != strconv.Itoa(i) {
			t.Fatalf("line %d is record %s: out of order", i, got)
		}
	}
	if most := w.b.Len()/flushAt + 2; w.writes > most {
		t.Fatalf("%d records took %d writes; batches of %d bytes allow %d", n, w.writes, flushAt, most)
	}
	t.Logf("%d records (%d bytes) in %d writes", n, w.b.Len(), w.writes)
}

// TestMaskCacheAnswersAsComputed: a Mask's remembered answers are the computed ones, for
// names asked once and again in any case, and names past the cache's bound are still
// answered.
func TestMaskCacheAnswersAsComputed(t *testing.T) {
	m := NewMask([]string{"X-Tenant", "X-Internal-*"})
	names := []string{"X-Hub-Signature-256", "x-hub-signature-256", "Content-Type", "X-Tenant", "x-tenant",
		"X-Internal-Key", "X-Internalx", "Authorization", "Cookie", "X-Api-Key", "X-Github-Event", ""}
	for i := range maxSeen + 50 {
		names = append(names, fmt.Sprintf("X-Made-Up-%d", i), fmt.Sprintf("X-Secret-%d", i))
	}
	for round := range 2 {
		for _, n := range names {
			if got, want := m.Masks(n), m.masks(n); got != want {
				t.Fatalf("round %d: Masks(%q) = %v, computed %v", round, n, got, want)
			}
		}
	}
	if seen := m.seen.Load(); seen == nil || len(*seen) != maxSeen {
		t.Fatalf("the cache holds %v names, want the bound %d", seen, maxSeen)
	}
	if a, ok := m.fast.Get(names[0]); !ok || !a.masked || a.key != `"X-Hub-Signature-256":` {
		t.Fatalf("the first name asked is not in the table without hashing: %+v, %v", a, ok)
	}
	if !m.Masks("X-Tenant") || m.Masks("Content-Type") || !m.Masks("X-Secret-1000") {
		t.Fatal("wrong answers past the bound")
	}
}

// TestRecordLineBytes pins a decision-log line byte for byte, with every filter outcome, and
// each Outcome's wire string: the typed outcomes write the strings the log always had.
func TestRecordLineBytes(t *testing.T) {
	r := sampleRecord()
	r.Filters = append(r.Filters,
		FilterResult{Name: "deny", Outcome: FilterDenied, Micros: 3},
		FilterResult{Name: "trap", Outcome: FilterError, Error: "trap", Micros: 4},
		FilterResult{Name: "skip", Outcome: FilterSkipped, Error: "trap", Micros: 5})
	const want = `{"decision_id":"0123456789abcdef0123456789abcdef","timestamp":"2026-01-02T03:04:05.000000006Z","path":"routes/github","policy":"routes.github","revision":"rev1","bundles":{"policies":{"revision":"prev1"}},"route":"github","remote_ip":"198.51.100.7","outcome":"denied","status":401,"reasons":["signature: signature mismatch"],"result":{"allow":false,"deny":["signature: signature mismatch"],"status":401},"labels":{"event":"push"},"request":{"method":"POST","path":"/hooks/github","headers":{"Authorization":"***","Cookie":"***","X-Hub-Signature-256":"***","Stripe-Signature":"***","X-Internal-Trace":"trace-me","X-Tenant":"acme","X-GitHub-Event":"push"},"body":"{\"zen\":\"","body_bytes":29,"body_truncated":true},"filters":[{"name":"guard","outcome":"next","us":12},{"name":"deny","outcome":"denied","us":3},{"name":"trap","outcome":"error","error":"trap","us":4},{"name":"skip","outcome":"skipped","error":"trap","us":5}],"shadow":{"policy":"routes.github_v2","allow":false,"deny":["stricter"],"status":403,"agree":false},"masked":["/request/headers/Authorization","/request/headers/Cookie","/request/headers/X-Hub-Signature-256","/request/headers/Stripe-Signature"],"metrics":{"timer_rego_query_eval_ns":40000,"timer_server_handler_ns":90000},"timings_us":{"policy":40,"filters":12,"upstream":0,"total":90}}`
	if got := string(r.AppendJSON(nil)); got != want+"\n" {
		t.Fatalf("line:\n%s\nwant:\n%s", got, want)
	}
	for o, wire := range map[Outcome]string{
		OutcomeAllowed: "allowed", OutcomeDenied: "denied", OutcomeFiltered: "filtered", OutcomeDuplicate: "duplicate",
		OutcomeInFlight: "in_flight", OutcomeRateLimited: "rate_limited", OutcomeError: "error", OutcomeNoRoute: "no_route",
		OutcomeBadMethod: "method_not_allowed", OutcomeTooLarge: "too_large", OutcomeUpstream: "upstream_error",
		OutcomeUnavailable: "unavailable", OutcomeBlocked: "blocked", OutcomeQueued: "queued", OutcomeDelivered: "delivered",
		OutcomeDead: "dead",
	} {
		r.Outcome = o
		if line := r.AppendJSON(nil); !bytes.Contains(line, []byte(`"outcome":"`+wire+`",`)) {
			t.Errorf("outcome %s: %s", wire, line)
		}
	}
}

// TestTimestampAsFormatted: a record's time, through the remembered second, is the text
// time.RFC3339Nano gives in UTC, for times in the same second and the next, fractions with
// and without trailing zeros, other zones, and years that are not four digits.
func TestTimestampAsFormatted(t *testing.T) {
	var st stamps
	zone := time.FixedZone("X", -(7*3600 + 30*60))
	rng := rand.New(rand.NewPCG(3, 4))
	base := time.Date(2026, 12, 5, 8, 48, 16, 0, time.UTC)
	check := func(tm time.Time) {
		t.Helper()
		want := tm.UTC().Format(time.RFC3339Nano)
		if got := string(st.append(nil, tm)); got != want {
			t.Fatalf("%v: %s, want %s", tm, got, want)
		}
	}
	for _, ns := range []int{0, 1, 10, 100000000, 120000000, 123456789, 999999999, 500, 1000, 1000000} {
		check(base.Add(time.Duration(ns)))
		check(base.Add(time.Second + time.Duration(ns)).In(zone))
		check(base.Add(time.Duration(ns))) // back to the earlier second
	}
	for range 20000 {
		sec := rng.Int64N(400 * 365 * 86400)
		tm := time.Unix(1600000000-200*365*86400+sec, rng.Int64N(1e9))
		if rng.IntN(4) == 0 {
			tm = tm.Truncate(time.Millisecond)
		}
		for range 3 { // the same second again, other fractions
			check(tm)
			tm = tm.Truncate(time.Second).Add(time.Duration(rng.Int64N(1e9)))
		}
	}
	check(time.Date(10000, 1, 1, 0, 0, 0, 5, time.UTC))
	check(time.Date(-1, 1, 1, 0, 0, 0, 5, time.UTC))
	check(time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC))
}

// A line is the same byte for byte whether its header names come from the mask's table (the
// name written as it was encoded when first asked), from the map behind it or from neither
// (past both bounds): names that need escaping, invalid UTF-8, masked and not, more than 64.
func TestMaskTableKeepsLinesIdentical(t *testing.T) {
	r := sampleRecord()
	r.Headers = nil
	for i := range 900 {
		r.Headers = append(r.Headers, Header{Name: fmt.Sprintf("X-Name-%d", i), Value: "v"})
		if i%7 == 0 {
			r.Headers = append(r.Headers, Header{Name: fmt.Sprintf("X-Token-<%d>", i), Value: "secret"})
		}
	}
	r.Headers = append(r.Headers, Header{`X-"Quoted"`, "a"}, Header{"X-\xff-Bad", "b"}, Header{"X-Ünïcode", "c"},
		Header{"Authorization", "Bearer x"}, Header{"X-Tab\tName", "d"})
	want := r.AppendJSON(nil) // the default mask, which remembers nothing
	m := NewMask(nil)
	for round := range 3 {
		if got := r.appendJSON(nil, m, nil, nil); !bytes.Equal(got, want) {
			t.Fatalf("round %d: the line differs from the uncached mask's:\n%s\nwant\n%s", round, got, want)
		}
	}
	held := 0
	for _, h := range r.Headers {
		if _, ok := m.fast.Get(h.Name); ok {
			held++
		}
	}
	if held < nametab.Size/2 {
		t.Fatalf("%d names in the table, want most of its %d slots used", held, nametab.Size)
	}
}
