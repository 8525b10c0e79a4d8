package gateway

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/redistest"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// Sources in these tests are loopback addresses other than 127.0.0.1 (all of 127/8 is
// loopback on Linux): each client binds its own local address.

// sourceClient returns a client whose connections come from ip.
func sourceClient(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
}

// watchPush is a GitHub push body; each carries its own delivery id, so no two are duplicates
// (the ready GitHub policy dedupes on the body's hash).
const watchPush = `{"ref":"refs/heads/main","repository":{"full_name":"octo/repo"},"delivery":%q}`

// pushFrom sends a GitHub push from c, validly signed with "github-secret" or forged.
func pushFrom(t testing.TB, c *http.Client, base string, forged bool) resp {
	t.Helper()
	r, err := tryPushFrom(c, base, forged)
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	return r
}

// tryPushFrom is pushFrom for goroutines other than the test's: it returns the error.
func tryPushFrom(c *http.Client, base string, forged bool) (resp, error) {
	delivery := nextDelivery()
	body := []byte(fmt.Sprintf(watchPush, delivery))
	sig := githubSig("github-secret", body)
	if forged {
		sig = "sha256=" + strings.Repeat("0", 64)
	}
	req, _ := http.NewRequest("POST", base+"/hooks/github", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", sig)
	r, err := c.Do(req)
	if err != nil {
		return resp{}, err
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{Status: r.StatusCode, Header: r.Header, Body: string(b)}, nil
}

// alignToWindow waits for the start of the next watch window (windows are multiples of w
// since the Unix epoch), so that a burst sent next is counted in one window: the sliding
// count weighs the previous window by the part of it still inside, and a burst straddling a
// boundary could fall a fraction short of min_events at its last request.
func alignToWindow(w time.Duration) {
	now := time.Now().UnixNano()
	next := (now/int64(w) + 1) * int64(w)
	time.Sleep(time.Duration(next-now) + 10*time.Millisecond)
}

// alertSink is a real HTTP receiver recording the alerts POSTed to it.
type alertSink struct {
	srv  *http.Server
	url  string
	mu   sync.Mutex
	got  []receivedAlert
	fail int // answer 503 to this many requests first
}

type receivedAlert struct {
	Header http.Header
	Body   []byte
}

func startAlertSink(t *testing.T) *alertSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &alertSink{url: "http://" + ln.Addr().String() + "/alerts"}
	s.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.fail > 0 {
			s.fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		s.got = append(s.got, receivedAlert{Header: r.Header.Clone(), Body: b})
		w.WriteHeader(http.StatusNoContent)
	})}
	go s.srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = s.srv.Close() })
	return s
}

// find returns the first alert about source.
func (s *alertSink) find(source string) (receivedAlert, map[string]any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.got {
		var doc struct {
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		}
		if json.Unmarshal(a.Body, &doc) == nil && doc.Type == "hookwall.anomaly" && doc.Data["source"] == source {
			return a, doc.Data, true
		}
	}
	return receivedAlert{}, nil, false
}

const standardWebhooksVerifier = `const { Webhook } = require("standardwebhooks");
let input = "";
process.stdin.on("data", (d) => (input += d));
process.stdin.on("end", () => {
  const { secret, headers, body } = JSON.parse(input);
  try {
    new Webhook(secret).verify(body, headers);
    process.stdout.write("verified");
  } catch (e) {
    process.stderr.write(String(e));
    process.exit(1);
  }
});
`

// standardWebhooksNode installs the npm package standardwebhooks (the Standard Webhooks
// project's own JavaScript library) into a test-local directory and returns a function that
// verifies a received webhook with it. Without node or npm the test is skipped, unless CI is
// set: then it fails.
func standardWebhooksNode(t *testing.T) func(secret string, h http.Header, body []byte) error {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and the Standard Webhooks check cannot run: "+format, args...)
		}
		t.Skipf("the Standard Webhooks check cannot run: "+format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		unavailable("node is not in PATH (install Node.js 18 or later)")
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		unavailable("npm is not in PATH")
	}
	dir := t.TempDir()
	// The registry can fail a request now and then: three attempts before giving up.
	var out []byte
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Second)
		}
		install := exec.Command(npm, "install", "--no-audit", "--no-fund", "--prefer-offline", "--prefix", dir, "standardwebhooks@1")
		if out, err = install.CombinedOutput(); err == nil {
			break
		}
	}
	if err != nil {
		unavailable("npm install standardwebhooks: %v\n%s", err, out)
	}
	script := filepath.Join(dir, "verify.js")
	if err := os.WriteFile(script, []byte(standardWebhooksVerifier), 0o644); err != nil {
		t.Fatal(err)
	}
	return func(secret string, h http.Header, body []byte) error {
		headers := map[string]string{}
		for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
			headers[k] = h.Get(k)
		}
		in, _ := json.Marshal(map[string]any{"secret": secret, "headers": headers, "body": string(body)})
		cmd := exec.Command(node, script)
		cmd.Dir = dir
		cmd.Stdin = bytes.NewReader(in)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || string(out) != "verified" {
			return fmt.Errorf("standardwebhooks refused it: %v: %s", err, stderr.String())
		}
		return nil
	}
}

func newStandardSecret(t *testing.T) string {
	var k [24]byte
	if _, err := rand.Read(k[:]); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(k[:])
}

const watchConfig = `
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[policies]
dir = "policies"
[log]
decisions = "{{DIR}}/decisions.log"
[secrets]
github = {file = "github.secret"}
alerts = {file = "alerts.secret"}
[[filter]]
name = "tiny"
module = "{{TINY}}"
[[route]]
name = "github"
path = "/hooks/github"
upstream = "{{UPSTREAM}}"
policy = "routes.providers.github"
filters = ["tiny"]
[watch]
window = "2s"
baseline = "1m"
min_events = 10
ratio = 5
never_block = ["127.0.0.5"]
`

// startWatchEnv runs a gateway with the shipped GitHub policy and the tiny filter on one
// route, [watch] as in watchConfig plus watchKeys, and the files given.
func startWatchEnv(t *testing.T, watchKeys string, files map[string]string) (*env, *upstream) {
	t.Helper()
	up := startUpstream(t)
	tiny := absPath(t, "../../examples/filters/tiny/tiny.wasm")
	cfg := strings.NewReplacer("{{TINY}}", tiny, "{{UPSTREAM}}", up.URL()).Replace(watchConfig) + watchKeys
	all := providerPolicyFiles(t)
	all["github.secret"] = "github-secret"
	all["alerts.secret"] = "whsec_c2VjcmV0LWZvci1hbGVydHM="
	for k, v := range files {
		all[k] = v
	}
	return startEnv(t, cfg, all, Options{}), up
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	r, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return r.StatusCode
}

// TestWatchBlocksForgedBurst: a burst of forged GitHub signatures from one address among
// valid traffic from others is detected within the window, alerted (the alert verified by
// the Standard Webhooks library), and blocked before any filter or policy; the others are
// untouched, never_block holds, and the block ends after block_for.
func TestWatchBlocksForgedBurst(t *testing.T) {
	verify := standardWebhooksNode(t)
	sink := startAlertSink(t)
	sink.fail = 1 // the first alert attempt meets a 503 and is retried
	secret := newStandardSecret(t)
	e, up := startWatchEnv(t, fmt.Sprintf("block = true\nblock_for = \"3s\"\nalert_url = %q\nalert_secret = \"alerts\"\n", sink.url),
		map[string]string{"alerts.secret": secret})

	attacker, monitor := sourceClient("127.0.0.2"), sourceClient("127.0.0.5")
	good := []*http.Client{sourceClient("127.0.0.3"), sourceClient("127.0.0.4")}

	// Valid traffic from two other addresses throughout.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopGood := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	defer stopGood()
	var mu sync.Mutex
	goodStatus := map[int]int{}
	for _, c := range good {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r, err := tryPushFrom(c, e.base, false)
				st := r.Status
				if err != nil {
					st = -1 // a transport error
				}
				mu.Lock()
				goodStatus[st]++
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		}()
	}

	var attackerStatus []int
	alignToWindow(2 * time.Second)
	for i := 0; i < 15; i++ {
		r := pushFrom(t, attacker, e.base, true)
		attackerStatus = append(attackerStatus, r.Status)
		if r.Status == 429 && r.Header.Get("Retry-After") != "3" {
			t.Errorf("blocked answer: Retry-After %q, want 3 (block_for)", r.Header.Get("Retry-After"))
		}
		if pushFrom(t, monitor, e.base, true).Status != 401 {
			t.Fatal("a never_block address's forgeries must still be refused by the policy (401)")
		}
	}
	blockedAt := time.Now()
	want := "[401 401 401 401 401 401 401 401 401 401 429 429 429 429 429]"
	if got := fmt.Sprint(attackerStatus); got != want {
		t.Fatalf("attacker's answers %s, want %s (blocked once min_events forgeries were seen)", got, want)
	}
	// A validly signed request from the blocked address is refused too: the block is about
	// the source, before any rule runs.
	if r := pushFrom(t, attacker, e.base, false); r.Status != 429 {
		t.Fatalf("blocked address, valid signature: %d, want 429", r.Status)
	}
	if r := pushFrom(t, monitor, e.base, false); r.Status != 200 {
		t.Fatalf("never_block address, valid signature: %d, want 200", r.Status)
	}
	time.Sleep(100 * time.Millisecond)
	stopGood()
	if len(goodStatus) != 1 || goodStatus[200] == 0 {
		t.Fatalf("the other sources must be untouched: %v", goodStatus)
	}

	// The status page's data, the blocks API and the metrics.
	var status statusDoc
	getJSON(t, e.admin+"/-/status", &status)
	if status.Watch == nil {
		t.Fatal("/-/status has no watch section")
	}
	active := map[string]bool{}
	for _, a := range status.Watch.Active {
		active[string(a.Scope)+" "+a.Source+" "+a.Kind+" "+strconv.FormatBool(a.Blocked)] = true
	}
	for _, k := range []string{"ip 127.0.0.2 signature true", "ip 127.0.0.5 signature false", "route github signature false"} {
		if !active[k] {
			t.Errorf("active anomalies lack %q: %v", k, active)
		}
	}
	for k := range active {
		if strings.Contains(k, "127.0.0.3") || strings.Contains(k, "127.0.0.4") {
			t.Errorf("a source sending valid requests raised %q", k)
		}
	}
	var recent recentDoc // what the status page polls
	getJSON(t, e.admin+"/-/recent", &recent)
	if recent.Watch == nil || len(recent.Watch.Active) != len(status.Watch.Active) || len(recent.Watch.Blocks) != 1 {
		t.Errorf("/-/recent watch section: %+v", recent.Watch)
	}
	var blocks struct {
		Blocks []struct {
			Source  string `json:"source"`
			Strikes int    `json:"strikes"`
			Kind    string `json:"kind"`
		} `json:"blocks"`
	}
	getJSON(t, e.admin+"/-/blocks", &blocks)
	if len(blocks.Blocks) != 1 || blocks.Blocks[0].Source != "127.0.0.2" || blocks.Blocks[0].Strikes != 1 || blocks.Blocks[0].Kind != "signature" {
		t.Fatalf("/-/blocks: %+v", blocks)
	}
	r, err := client.Get(e.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(r.Body)
	r.Body.Close()
	for _, line := range []string{`hookwall_anomalies_total{kind="signature",route="github"} 3`, `hookwall_watch_blocks 1`, `hookwall_watch_blocks_capacity 10000`, `hookwall_watch_blocks_refused_total 0`, `hookwall_requests_total{code="429",outcome="blocked",route="github"} 6`} {
		if !strings.Contains(string(metrics), line) {
			t.Errorf("metrics lack %q", line)
		}
	}
	if log := e.logBuf.String(); !strings.Contains(log, `msg=anomaly anomaly="{\"id\":`) || !strings.Contains(log, `\"source\":\"127.0.0.2\"`) || !strings.Contains(log, `\"baseline\":0`) {
		t.Errorf("no anomaly log line for the attacker:\n%s", log)
	}

	// The alert, verified by the Standard Webhooks library; a changed body is refused by it.
	var alert receivedAlert
	var data map[string]any
	testutil.WaitFor(t, func() bool {
		var ok bool
		alert, data, ok = sink.find("127.0.0.2")
		return ok
	})
	if err := verify(secret, alert.Header, alert.Body); err != nil {
		t.Fatalf("alert signature: %v", err)
	}
	if err := verify(secret, alert.Header, bytes.Replace(alert.Body, []byte("127.0.0.2"), []byte("127.0.0.9"), 1)); err == nil {
		t.Fatal("the verifier accepted a changed alert body: the check cannot fail")
	}
	if data["scope"] != "ip" || data["kind"] != "signature" || data["route"] != "github" || data["blocked"] != true || data["rule"] != "ratio" {
		t.Fatalf("alert data %v", data)
	}

	// The block ends after block_for.
	time.Sleep(time.Until(blockedAt.Add(3 * time.Second)))
	testutil.WaitFor(t, func() bool { return pushFrom(t, attacker, e.base, false).Status == 200 })
	if time.Since(blockedAt) > 4*time.Second {
		t.Fatalf("the block lasted %v, want block_for (3s)", time.Since(blockedAt))
	}
	getJSON(t, e.admin+"/-/blocks", &blocks)
	if len(blocks.Blocks) != 0 {
		t.Fatalf("/-/blocks after the block ended: %+v", blocks)
	}

	// The decision log: blocked requests never reached the filter (no "filters") or the
	// upstream.
	e.stop()
	raw, err := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	blockedLines := 0
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, `"outcome":"blocked"`) {
			continue
		}
		blockedLines++
		if strings.Contains(line, `"filters":[`) || !strings.Contains(line, `"remote_ip":"127.0.0.2"`) || !strings.Contains(line, `"status":429`) {
			t.Errorf("blocked record: %s", line)
		}
	}
	if blockedLines != 6 {
		t.Errorf("%d blocked records, want 6", blockedLines)
	}
	fromAttacker := 0
	for _, rq := range up.requests() {
		if rq.Header.Get("X-Forwarded-For") == "127.0.0.2" {
			fromAttacker++
		}
	}
	if fromAttacker != 1 {
		t.Fatalf("%d requests from the attacker reached the upstream, want 1 (the valid one after the block ended)", fromAttacker)
	}
}

const markedPolicy = `package routes.marked

default allow := false

allow if not input.request.headers["x-forged"]

deny contains "signature: signature mismatch" if input.request.headers["x-forged"]

deny contains "source: marked by the watcher" if input.source.blocked

status := 403
`

// TestWatchBlockPolicyMode: with block = "policy" the gateway refuses nothing itself; the
// policy reads input.source.blocked and decides, under either evaluator.
func TestWatchBlockPolicyMode(t *testing.T) {
	for _, evaluator := range []string{"auto", "opa"} {
		t.Run(evaluator, func(t *testing.T) {
			up := startUpstream(t)
			e := startEnv(t, fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[policies]
dir = "policies"
evaluator = %q
[log]
decisions = "off"
[watch]
window = "2s"
min_events = 5
block = "policy"
[[route]]
name = "marked"
path = "/hooks/marked"
upstream = %q
policy = "routes.marked"
`, evaluator, up.URL()), map[string]string{"policies/marked.rego": markedPolicy}, Options{})
			if ev, _ := e.g.Snapshot().Routes[0].Query.Evaluator(); evaluator == "auto" && ev != "compiled" {
				t.Fatalf("the policy is evaluated by %s; this case is for the compiled evaluator", ev)
			}
			c, other := sourceClient("127.0.0.2"), sourceClient("127.0.0.3")
			send := func(c *http.Client, forged bool) resp {
				req, _ := http.NewRequest("POST", e.base+"/hooks/marked", strings.NewReader("{}"))
				if forged {
					req.Header.Set("X-Forged", "1")
				}
				r, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Body.Close()
				b, _ := io.ReadAll(r.Body)
				return resp{Status: r.StatusCode, Body: string(b)}
			}
			alignToWindow(2 * time.Second)
			for i := 0; i < 5; i++ {
				if r := send(c, true); r.Status != 403 || strings.Contains(r.Body, "marked") {
					t.Fatalf("forgery %d: %d %s, want 403 for the signature alone", i, r.Status, r.Body)
				}
			}
			// Marked now: the gateway does not answer 429; the policy refuses with its reason.
			r := send(c, false)
			if r.Status != 403 || r.Body != `{"error":"denied","reasons":["source: marked by the watcher"]}` {
				t.Fatalf("marked source: %d %s, want the policy's refusal", r.Status, r.Body)
			}
			if r := send(other, false); r.Status != 200 {
				t.Fatalf("another source: %d %s", r.Status, r.Body)
			}
		})
	}
}

// TestWatchSteadySlowDenialsRaiseNothing: a source refused at a slow, steady rate, under
// min_events in every window, raises nothing and is never blocked.
func TestWatchSteadySlowDenialsRaiseNothing(t *testing.T) {
	e, _ := startWatchEnv(t, "block = true\n", nil)
	c := sourceClient("127.0.0.6")
	// Two a second for six seconds (three 2s windows): the sliding window (this window and
	// the share of the last still inside it) never holds min_events (10).
	for i := 0; i < 12; i++ {
		if r := pushFrom(t, c, e.base, true); r.Status != 401 {
			t.Fatalf("refusal %d: %d, want 401 (never blocked)", i, r.Status)
		}
		time.Sleep(500 * time.Millisecond)
	}
	var status statusDoc
	getJSON(t, e.admin+"/-/status", &status)
	if n := status.Watch.Stats.Anomalies; n != 0 || len(status.Watch.Recent) != 0 {
		t.Fatalf("steady slow refusals raised %d anomalies: %+v", n, status.Watch.Recent)
	}
}

// TestWatchFleetSharesBlocks: two gateways on one real redis-server. A source blocked at A
// is refused at B within a second; lifted at B (admin API), it is let through at A within a
// second.
func TestWatchFleetSharesBlocks(t *testing.T) {
	rs := redistest.Start(t)
	state := fmt.Sprintf("block = true\nblock_for = \"1m\"\n[state]\nbackend = \"redis\"\nurl = %q\ntimeout = \"2s\"\nprefix = \"watch-fleet:\"\n", rs.URL())
	a, _ := startWatchEnv(t, state, nil)
	b, _ := startWatchEnv(t, state, nil)
	attacker := sourceClient("127.0.0.2")
	alignToWindow(2 * time.Second)
	for i := 0; i < 10; i++ {
		if r := pushFrom(t, attacker, a.base, true); r.Status != 401 {
			t.Fatalf("forgery %d at A: %d", i, r.Status)
		}
	}
	blocked := time.Now()
	if r := pushFrom(t, attacker, a.base, false); r.Status != 429 {
		t.Fatalf("at A after the burst: %d, want 429", r.Status)
	}
	for pushFrom(t, attacker, b.base, false).Status != 429 {
		if time.Since(blocked) > time.Second {
			t.Fatal("B did not refuse the source blocked at A within a second")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("B refused the source %v after A blocked it", time.Since(blocked).Round(time.Millisecond))
	var list struct {
		Blocks []struct{ Source, Gateway string } `json:"blocks"`
	}
	getJSON(t, b.admin+"/-/blocks", &list)
	if len(list.Blocks) != 1 || list.Blocks[0].Source != "127.0.0.2" || list.Blocks[0].Gateway == "" {
		t.Fatalf("B's blocks: %+v", list)
	}
	// Other sources pass at both.
	if pushFrom(t, sourceClient("127.0.0.3"), b.base, false).Status != 200 || pushFrom(t, sourceClient("127.0.0.3"), a.base, false).Status != 200 {
		t.Fatal("another source is refused")
	}

	req, _ := http.NewRequest(http.MethodDelete, b.admin+"/-/blocks/127.0.0.2", nil)
	req.Header.Set(AdminHeader, "1")
	r, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("lift at B: %d", r.StatusCode)
	}
	lifted := time.Now()
	if st := pushFrom(t, attacker, b.base, false).Status; st != 200 {
		t.Fatalf("at B right after its lift: %d", st)
	}
	for pushFrom(t, attacker, a.base, false).Status != 200 {
		if time.Since(lifted) > time.Second {
			t.Fatal("A kept the block lifted at B for more than a second")
		}
		time.Sleep(20 * time.Millisecond)
	}
	req, _ = http.NewRequest(http.MethodDelete, a.admin+"/-/blocks/127.0.0.2", nil)
	req.Header.Set(AdminHeader, "1")
	if r, err = client.Do(req); err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 404 {
		t.Fatalf("lifting a lifted block: %d, want 404", r.StatusCode)
	}
}

// TestWatchSurvivesReload: windows live outside the snapshot, so refusals counted before a
// reload still count after it; a change to [watch] itself is refused until a restart.
func TestWatchSurvivesReload(t *testing.T) {
	e, _ := startWatchEnv(t, "block = true\n", map[string]string{"policies/extra.rego": "package extra\n\nx := 1\n"})
	attacker := sourceClient("127.0.0.2")
	alignToWindow(2 * time.Second)
	for i := 0; i < 6; i++ {
		if st := pushFrom(t, attacker, e.base, true).Status; st != 401 {
			t.Fatalf("forgery %d: %d", i, st)
		}
	}
	if err := os.WriteFile(filepath.Join(e.dir, "policies/extra.rego"), []byte("package extra\n\nx := 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rev := e.g.Status().Revision
	if code, ans := e.adminReload(); code != 200 || ans["revision"] == rev {
		t.Fatalf("reload: %d %v, want a new revision", code, ans)
	}
	for i := 6; i < 10; i++ {
		if st := pushFrom(t, attacker, e.base, true).Status; st != 401 {
			t.Fatalf("forgery %d: %d", i, st)
		}
	}
	if st := pushFrom(t, attacker, e.base, false).Status; st != 429 {
		t.Fatalf("after ten forgeries across a reload: %d, want 429", st)
	}

	cfgPath := filepath.Join(e.dir, "gateway.toml")
	raw, _ := os.ReadFile(cfgPath)
	if err := os.WriteFile(cfgPath, bytes.Replace(raw, []byte("min_events = 10"), []byte("min_events = 50"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, ans := e.adminReload(); code != 422 || !strings.Contains(ans["error"], "watch.min_events") {
		t.Fatalf("reload of a [watch] change: %d %v, want 422 naming watch.min_events", code, ans)
	}
	if st := pushFrom(t, attacker, e.base, false).Status; st != 429 {
		t.Fatalf("the block must survive a refused reload: %d", st)
	}
}

// TestWatchCheckAlertSecret: hookwall check refuses an alert key that is not a Standard
// Webhooks key, as a start would, without quoting it.
func TestWatchCheckAlertSecret(t *testing.T) {
	for _, c := range []struct{ name, secret, want string }{
		{"standard key", "whsec_c2VjcmV0LWZvci1hbGVydHM=", ""},
		{"not base64", "hunter2!", `gateway.toml: watch: alert_secret "alerts": not a Standard Webhooks key`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := `
[secrets]
alerts = {file = "alerts.secret"}
[watch]
alert_url = "https://alerts.example/hook"
alert_secret = "alerts"
[[route]]
name = "a"
path = "/a"
upstream = "http://127.0.0.1:1"
policy = "routes.a"
`
			for name, body := range map[string]string{"gateway.toml": cfg, "alerts.secret": c.secret, "policies/a.rego": "package routes.a\nallow := true\n"} {
				os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Check(t.Context(), filepath.Join(dir, "gateway.toml"), Options{})
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("check: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("check: %v, want an error containing %q", err, c.want)
			case err != nil && strings.Contains(err.Error(), c.secret):
				t.Fatalf("the error quotes the secret: %v", err)
			}
		})
	}
}

// TestStatusPageShowsAnomalies: the status page, rendered by headless Chromium under its CSP,
// shows the anomalies and the blocks.
func TestStatusPageShowsAnomalies(t *testing.T) {
	bin := chromium(t)
	e, _ := startWatchEnv(t, "block = true\n", nil)
	attacker := sourceClient("127.0.0.2")
	alignToWindow(2 * time.Second)
	for i := 0; i < 10; i++ {
		pushFrom(t, attacker, e.base, true)
	}
	dom := string(runChromium(t, bin, e.admin+"/", "--dump-dom"))
	for _, want := range []string{`id="watch-s" style="display: block;"`, `<code>127.0.0.2</code>`, `<td>signature</td><td>ratio</td>`, `<td class="num">1</td><td>github</td><td>signature</td>`} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}
}

// TestWatchDoesNotBlockAProviderOnEventsOthersTrigger: anyone can make GitHub send events
// (starring a public repository sends "star"), which the demo policy refuses, signed, with
// 422. Past min_events of them the provider's address has a policy anomaly, reported, but
// not blocked: its next genuine push is forwarded. The same class with block = true blocks.
func TestWatchDoesNotBlockAProviderOnEventsOthersTrigger(t *testing.T) {
	demo, err := os.ReadFile("../../policies/routes/github.rego")
	if err != nil {
		t.Fatal(err)
	}
	event := func(t *testing.T, c *http.Client, base, name string) int {
		t.Helper()
		delivery := nextDelivery()
		st, _ := signedGitHub(t, c, base, name, delivery, fmt.Sprintf(`{"action":"created","delivery":%q}`, delivery))
		return st
	}
	for _, c := range []struct {
		name, class string
		blocked     bool
	}{{"default", "", false}, {"policy class blocks", "[watch.class.policy]\nblock = true\n", true}} {
		t.Run(c.name, func(t *testing.T) {
			e := startBlockingEnv(t, "github", "/hooks/github", "", c.class, map[string]string{"policies/github.rego": string(demo)})
			github := sourceClient("127.0.0.7")
			if st := event(t, github, e.base, "push"); st != 200 {
				t.Fatalf("a genuine push: %d, want 200", st)
			}
			for i := range 21 {
				if st := event(t, github, e.base, "star"); st != 422 && !(c.blocked && st == 429) {
					t.Fatalf("star %d: %d, want 422", i, st)
				}
			}
			var status statusDoc
			getJSON(t, e.admin+"/-/status", &status)
			if status.Watch == nil || status.Watch.Stats.Anomalies == 0 {
				t.Fatalf("21 refused stars in a minute raised no anomaly: %+v", status.Watch)
			}
			st := event(t, github, e.base, "push")
			switch {
			case !c.blocked && st != 200:
				t.Errorf("the provider's genuine push after events others triggered: %d, want 200 (blocks %+v)", st, status.Watch.Blocks)
			case c.blocked && st != 429:
				t.Errorf("with [watch.class.policy] block = true, the push after the anomaly: %d, want 429", st)
			}
		})
	}
}

// signedGitHub sends a GitHub delivery of event, signed with the test's secret, from c and
// returns its status and Hookwall-Duplicate header.
func signedGitHub(t *testing.T, c *http.Client, base, event, delivery, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/hooks/github", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", githubSig("github-secret", []byte(body)))
	r, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return r.StatusCode, r.Header.Get("Hookwall-Duplicate")
}

// TestWatchDoesNotBlockAProviderRetrying: a provider retries a delivery whose answer was
// slow or lost, and each retry of one already delivered is a duplicate (200
// Hookwall-Duplicate): retries during an upstream's bad minute must not get the provider's
// address blocked, which would refuse its next genuine delivery. Replays of a captured
// delivery cost nothing either way: the gateway forwards none of them.
func TestWatchDoesNotBlockAProviderRetrying(t *testing.T) {
	demo, err := os.ReadFile("../../policies/routes/github.rego")
	if err != nil {
		t.Fatal(err)
	}
	push := func(t *testing.T, c *http.Client, base, delivery string) (int, string) {
		t.Helper()
		return signedGitHub(t, c, base, "push", delivery, fmt.Sprintf(`{"ref":"refs/heads/main","delivery":%q}`, delivery))
	}
	for _, c := range []struct {
		name, class string
		blocked     bool
	}{{"default", "", false}, {"replay class blocks", "[watch.class.replay]\nblock = true\n", true}} {
		t.Run(c.name, func(t *testing.T) {
			e := startBlockingEnv(t, "github", "/hooks/github", "", c.class, map[string]string{"policies/github.rego": string(demo)})
			github := sourceClient("127.0.0.8")
			for range 7 {
				id := nextDelivery()
				for try := range 4 {
					st, dup := push(t, github, e.base, id)
					if !(c.blocked && st == 429) && (st != 200 || (try > 0) != (dup != "")) {
						t.Fatalf("delivery %s, try %d: %d duplicate=%q", id, try, st, dup)
					}
				}
			}
			var status statusDoc
			getJSON(t, e.admin+"/-/status", &status)
			if status.Watch == nil || status.Watch.Stats.Anomalies == 0 {
				t.Fatalf("21 retries in a minute raised no anomaly: %+v", status.Watch)
			}
			st, _ := push(t, github, e.base, nextDelivery())
			switch {
			case !c.blocked && st != 200:
				t.Errorf("the provider's next delivery after its retries: %d, want 200 (blocks %+v)", st, status.Watch.Blocks)
			case c.blocked && st != 429:
				t.Errorf("with [watch.class.replay] block = true, the delivery after the anomaly: %d, want 429", st)
			}
		})
	}
}

// TestWatchBlocksAnIPv6ClientsPrefix: an IPv6 host holds a /64; blocked for its forgeries,
// it is refused from every address of it, not from another /64, and the block lifts by the
// prefix's own text through the admin API.
func TestWatchBlocksAnIPv6ClientsPrefix(t *testing.T) {
	pol := "package routes.r\n\ndefault allow := false\n\ndeny contains \"signature: no match\"\n\nstatus := 401\n"
	e := startBlockingEnv(t, "r", "/hook", `trusted_proxies = ["127.0.0.1"]`, "", map[string]string{"policies/r.rego": pol})
	from := func(ip string) int {
		return e.do("POST", "/hook", []byte("{}"), map[string]string{"X-Forwarded-For": ip}).Status
	}
	for range 21 {
		from("2001:db8:1:2::1")
	}
	for ip, want := range map[string]int{"2001:db8:1:2::1": 429, "2001:db8:1:2::2": 429, "2001:db8:1:2:ffff::9": 429, "2001:db8:1:3::1": 401} {
		if st := from(ip); st != want {
			t.Errorf("after 21 forgeries from 2001:db8:1:2::1, a request from %s: %d, want %d", ip, st, want)
		}
	}
	st, body := adminDo(t, e, "DELETE", "/-/blocks/"+url.PathEscape("2001:db8:1:2::/64"), "", map[string]string{AdminHeader: "1"}, "")
	if st != 200 {
		t.Fatalf("lifting 2001:db8:1:2::/64: %d %s", st, body)
	}
	if st := from("2001:db8:1:2::2"); st != 401 {
		t.Errorf("after the lift: %d, want 401", st)
	}
}

// TestWatchCountsWhatTheGatewayRefuses: bodies the gateway refuses itself (JSON nested past
// max_json_depth: 422) are the client's refusals too, of the malformed class: a flood of
// them from one address raises an anomaly, reported by default and blocking with
// [watch.class.malformed] block = true.
func TestWatchCountsWhatTheGatewayRefuses(t *testing.T) {
	bomb := []byte(strings.Repeat("[", 1000) + strings.Repeat("]", 1000))
	for _, c := range []struct {
		name, class string
		blocked     bool
	}{{"default", "", false}, {"blocking", "[watch.class.malformed]\nblock = true\n", true}} {
		t.Run(c.name, func(t *testing.T) {
			pol := "package routes.r\n\ndefault allow := false\n\nallow if input.request.json.ok\n"
			e := startBlockingEnv(t, "r", "/hook", "", c.class, map[string]string{"policies/r.rego": pol})
			counts := map[int]int{}
			for range 30 {
				counts[e.do("POST", "/hook", bomb, map[string]string{"Content-Type": "application/json"}).Status]++
			}
			var status statusDoc
			getJSON(t, e.admin+"/-/status", &status)
			if status.Watch == nil || len(status.Watch.Recent) == 0 || status.Watch.Recent[0].Kind != "malformed" {
				t.Fatalf("30 over-deep JSON bodies from one address (answers %v) raised no malformed anomaly: %+v", counts, status.Watch)
			}
			if blocked := counts[429] > 0; blocked != c.blocked {
				t.Errorf("answers %v: blocked %v, want %v", counts, blocked, c.blocked)
			}
		})
	}
}

// startBlockingEnv runs a gateway whose one route, name at path, is judged by policy
// routes.<name> (files holds it), with [watch] block = true, server keys added to [server]
// and tables (a [watch.class.NAME], say) appended.
func startBlockingEnv(t *testing.T, name, path, server, tables string, files map[string]string) *env {
	t.Helper()
	up := startUpstream(t)
	cfg := fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
%s
[admin]
listen = "127.0.0.1:0"
[policies]
dir = "policies"
[log]
decisions = "off"
[secrets]
github = {file = "github.secret"}
[[route]]
name = %q
path = %q
upstream = %q
policy = "routes.%s"
[watch]
block = true
%s`, server, name, path, up.URL(), name, tables)
	files["github.secret"] = "github-secret"
	return startEnv(t, cfg, files, Options{})
}

// TestWatchDoesNotBlameTheTrustedProxy: requests refused before the client's address
// behind a trusted proxy is read (Content-Type twice: bad framing) are not counted against
// the proxy: with the malformed class blocking, the proxy's own next request still passes.
func TestWatchDoesNotBlameTheTrustedProxy(t *testing.T) {
	e := startBlockingEnv(t, "r", "/hook", `trusted_proxies = ["127.0.0.1"]`, "[watch.class.malformed]\nblock = true\n",
		map[string]string{"policies/r.rego": "package routes.r\n\nallow := true\n"})
	for range 30 {
		req, _ := http.NewRequest("POST", e.base+"/hook", bytes.NewReader([]byte("{}")))
		req.Header["Content-Type"] = []string{"application/json", "text/plain"}
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		r, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.StatusCode != 400 {
			t.Fatalf("Content-Type twice: %d, want 400", r.StatusCode)
		}
	}
	var status statusDoc
	getJSON(t, e.admin+"/-/status", &status)
	for _, a := range status.Watch.Recent {
		if a.Source == "127.0.0.1" {
			t.Errorf("an anomaly names the trusted proxy: %+v", a)
		}
	}
	if st := e.do("POST", "/hook", []byte("{}"), nil).Status; st != 200 {
		t.Errorf("the trusted proxy's own request after its clients' refused ones: %d, want 200", st)
	}
}
