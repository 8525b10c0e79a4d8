package gateway

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const githubPolicy = `package routes.github

sig := hookwall.webhook.verify("github", input.request, {"secret": "github"})

default allow := false

allow if sig.valid

deny contains sprintf("signature: %s", [sig.reason]) if not sig.valid

status := 401 if not sig.valid

labels := {"event": input.request.headers["x-github-event"]} if sig.valid

upstream_headers := {"X-Hookwall-Verified": "github"} if sig.valid
`

// brokenPolicy divides by zero at evaluation time: an evaluation error, not a denial.
const brokenPolicy = `package routes.broken

allow if {
	x := to_number(input.request.headers["x-n"])
	1 / x > 0
}
`

const e2eConfig = `
[server]
listen = "127.0.0.1:0"
max_body = "64KiB"
trusted_proxies = ["10.0.0.0/8"]

[admin]
listen = "127.0.0.1:0"

[policies]
dir = "policies"

[log]
decisions = "{{DIR}}/decisions.log"

[secrets]
github = {file = "github.secret"}

[[route]]
name = "github"
path = "/hooks/github"
methods = ["POST"]
upstream = "{{UPSTREAM}}"
policy = "routes.github"
timeout = "2s"

[[route]]
name = "slow"
path = "/hooks/slow"
upstream = "{{UPSTREAM}}"
policy = "routes.github"
timeout = "300ms"

[[route]]
name = "down"
path = "/hooks/down"
upstream = "{{DOWN}}"
policy = "routes.github"

[[route]]
name = "broken"
prefix = "/hooks/broken"
upstream = "{{UPSTREAM}}"
policy = "routes.broken"
`

const secret = "e2e-secret"

func startE2E(t *testing.T) (*env, *upstream) {
	t.Helper()
	up := startUpstream(t)
	// A port nobody listens on: bind, note the address, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{DOWN}}", down).Replace(e2eConfig)
	e := startEnv(t, cfg, map[string]string{
		"policies/routes/github.rego": githubPolicy,
		"policies/routes/broken.rego": brokenPolicy,
		"github.secret":               secret + "\n",
	}, Options{})
	return e, up
}

func TestE2EValidSignatureForwardsExactBytes(t *testing.T) {
	e, up := startE2E(t)
	bodies := map[string][]byte{
		"json":   []byte(`{"zen":"Design for failure.","hook_id":1}`),
		"binary": {0x00, 0xff, 0xfe, 0x80, 0x0d, 0x0a, 0x00, 0xc3, 0x28, 'x'},
		"empty":  {},
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			before := len(up.requests())
			r := e.do("POST", "/hooks/github?x=1&x=2", body, map[string]string{
				"X-Hub-Signature-256": githubSig(secret, body),
				"X-GitHub-Event":      "push",
				"Content-Type":        "application/octet-stream",
			})
			if r.Status != 200 || r.Body != "upstream ok" {
				t.Fatalf("status %d body %q, want 200 from upstream", r.Status, r.Body)
			}
			reqs := up.requests()
			if len(reqs) != before+1 {
				t.Fatalf("upstream got %d requests, want 1", len(reqs)-before)
			}
			got := reqs[len(reqs)-1]
			if !bytes.Equal(got.Body, body) {
				t.Fatalf("upstream body %x, want %x", got.Body, body)
			}
			if got.URI != "/hooks/github?x=1&x=2" {
				t.Errorf("upstream URI %q", got.URI)
			}
			if got.Header.Get("X-Hookwall-Verified") != "github" {
				t.Errorf("upstream_headers not applied: %v", got.Header)
			}
			if id := got.Header.Get("X-Request-Id"); len(id) != 32 || id != r.Header.Get("X-Request-Id") {
				t.Errorf("X-Request-Id upstream %q, client %q", id, r.Header.Get("X-Request-Id"))
			}
			if xff := got.Header.Get("X-Forwarded-For"); xff != "127.0.0.1" {
				t.Errorf("X-Forwarded-For %q", xff)
			}
		})
	}
}

func TestE2EBadSignaturesAreRefused(t *testing.T) {
	e, up := startE2E(t)
	body := []byte(`{"action":"opened"}`)
	cases := map[string]map[string]string{
		"forged":   {"X-Hub-Signature-256": githubSig("not-the-secret", body)},
		"missing":  {},
		"tampered": {"X-Hub-Signature-256": githubSig(secret, append(append([]byte(nil), body...), ' '))},
		"garbage":  {"X-Hub-Signature-256": "sha256=zz"},
		"sha1only": {"X-Hub-Signature": "sha1=0000000000000000000000000000000000000000"},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.do("POST", "/hooks/github", body, h)
			if r.Status != 401 {
				t.Fatalf("status %d, want 401 (body %s)", r.Status, r.Body)
			}
			var doc struct {
				Reasons []string `json:"reasons"`
			}
			if err := json.Unmarshal([]byte(r.Body), &doc); err != nil || len(doc.Reasons) == 0 || !strings.HasPrefix(doc.Reasons[0], "signature: ") {
				t.Fatalf("body %q: want reasons starting with \"signature: \"", r.Body)
			}
		})
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("upstream received %d requests; refused webhooks must not reach it", n)
	}
}

func TestE2EGatewayAnswers(t *testing.T) {
	e, up := startE2E(t)
	signed := func(body []byte) map[string]string {
		return map[string]string{"X-Hub-Signature-256": githubSig(secret, body)}
	}
	body := []byte(`{"a":1}`)

	if r := e.do("POST", "/nowhere", body, nil); r.Status != 404 {
		t.Errorf("unknown route: %d, want 404", r.Status)
	}
	r := e.do("GET", "/hooks/github", nil, nil)
	if r.Status != 405 || r.Header.Get("Allow") != "POST" {
		t.Errorf("wrong method: %d Allow=%q, want 405 Allow=POST", r.Status, r.Header.Get("Allow"))
	}
	big := bytes.Repeat([]byte("a"), 65*1024)
	if r := e.do("POST", "/hooks/github", big, signed(big)); r.Status != 413 {
		t.Errorf("body over max_body: %d, want 413", r.Status)
	}
	if r := e.do("POST", "/hooks/down", body, signed(body)); r.Status != 502 {
		t.Errorf("upstream refused: %d, want 502", r.Status)
	}
	up.setHandler(func(ctx *fasthttp.RequestCtx) { time.Sleep(1 * time.Second); ctx.SetStatusCode(200) })
	start := time.Now()
	r = e.do("POST", "/hooks/slow", body, signed(body))
	if r.Status != 504 {
		t.Errorf("upstream slower than the route timeout: %d, want 504", r.Status)
	}
	if el := time.Since(start); el > 900*time.Millisecond {
		t.Errorf("504 took %v; the route timeout is 300ms", el)
	}
	up.setHandler(nil)
	r = e.do("POST", "/hooks/broken/x", nil, map[string]string{"X-N": "0"})
	if r.Status != 500 || strings.Contains(r.Body, "divide") {
		t.Errorf("policy evaluation error: %d %q, want 500 without the Rego error", r.Status, r.Body)
	}
	if !strings.Contains(e.logBuf.String(), "divide by zero") {
		t.Errorf("the process log must carry the Rego error; got:\n%s", e.logBuf.String())
	}
	// Undefined allow (no x-n header makes to_number fail? no: undefined) denies with 403.
	if r := e.do("POST", "/hooks/broken/x", nil, nil); r.Status != 403 {
		t.Errorf("undefined allow: %d, want 403 (fail closed)", r.Status)
	}
}

func TestE2EDecisionLog(t *testing.T) {
	e, _ := startE2E(t)
	body := []byte(`{"a":1}`)
	e.do("POST", "/hooks/github", body, map[string]string{
		"X-Hub-Signature-256": githubSig(secret, body), "X-GitHub-Event": "push",
		"Authorization": "Bearer top-secret-token", "Cookie": "session=abc",
	})
	e.do("POST", "/hooks/github", body, map[string]string{"X-Hub-Signature-256": githubSig("wrong", body)})
	e.do("GET", "/nope", nil, nil)
	big := bytes.Repeat([]byte("a"), 65*1024) // over max_body, and validly signed
	e.do("POST", "/hooks/github", big, map[string]string{"X-Hub-Signature-256": githubSig(secret, big), "X-GitHub-Event": "push"})
	e.stop() // flushes the log

	raw, err := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"top-secret-token", "session=abc", secret, githubSig(secret, body)[7:], `"body"`} {
		if bytes.Contains(raw, []byte(leak)) {
			t.Errorf("decision log contains %q:\n%s", leak, raw)
		}
	}
	lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	if len(lines) != 4 {
		t.Fatalf("got %d decision-log lines, want 4:\n%s", len(lines), raw)
	}
	type rec struct {
		DecisionID string           `json:"decision_id"`
		Timestamp  time.Time        `json:"timestamp"`
		Route      string           `json:"route"`
		RemoteIP   string           `json:"remote_ip"`
		Path       string           `json:"path"` // OPA's: the queried package
		Outcome    string           `json:"outcome"`
		Status     int              `json:"status"`
		Reasons    []string         `json:"reasons"`
		Labels     map[string]any   `json:"labels"`
		Timings    map[string]int64 `json:"timings_us"`
		Request    struct {
			Method  string            `json:"method"`
			Path    string            `json:"path"`
			Headers map[string]string `json:"headers"`
		} `json:"request"`
	}
	var recs []rec
	for _, l := range lines {
		var r rec
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatalf("line is not JSON: %v\n%s", err, l)
		}
		if len(r.DecisionID) != 32 || r.Timestamp.IsZero() || r.RemoteIP != "127.0.0.1" {
			t.Errorf("incomplete record: %s", l)
		}
		recs = append(recs, r)
		if len(recs) > 2 {
			continue // no policy ran, no upstream was asked
		}
		for _, k := range []string{"policy", "upstream", "total"} {
			if _, ok := r.Timings[k]; !ok {
				t.Errorf("timings_us.%s missing: %s", k, l)
			}
		}
	}
	ok, denied, none, large := recs[0], recs[1], recs[2], recs[3]
	if ok.Outcome != "allowed" || ok.Status != 200 || ok.Route != "github" || ok.Path != "routes/github" || ok.Request.Method != "POST" || ok.Request.Path != "/hooks/github" || ok.Labels["event"] != "push" {
		t.Errorf("allowed record: %+v", ok)
	}
	if h := ok.Request.Headers; h["Authorization"] != "***" || h["Cookie"] != "***" || h["X-Hub-Signature-256"] != "***" || h["X-Github-Event"] != "push" {
		t.Errorf("masking: %v", h)
	}
	if denied.Outcome != "denied" || denied.Status != 401 || len(denied.Reasons) != 1 || !strings.HasPrefix(denied.Reasons[0], "signature: ") {
		t.Errorf("denied record: %+v", denied)
	}
	if none.Outcome != "no_route" || none.Status != 404 || none.Path != "" || none.Request.Path != "/nope" {
		t.Errorf("no-route record: %+v", none)
	}
	// A body over max_body is refused as it is read, before routing: no route, no policy
	// time, no labels (the policy would have labelled the event), no reasons of a rule.
	if large.Outcome != "too_large" || large.Status != 413 || large.Route != "" || large.Timings["policy"] != 0 || len(large.Labels) != 0 || len(large.Reasons) != 0 {
		t.Errorf("too-large record: %+v", large)
	}
}
