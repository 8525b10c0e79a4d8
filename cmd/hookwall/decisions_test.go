package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/gateway"
)

// sealConfig is a gateway with a GitHub-verified route, body capture and encryption keys;
// {{KEYS}}, {{ROUTE}} (extra route keys) and {{UPSTREAM}} are replaced.
const sealConfig = `
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
decisions = "decisions.log"
body = "64KiB"
[delivery]
encryption_keys = {{KEYS}}
[secrets]
gh = {file = "gh.secret"}
k1 = {file = "k1.key"}
k2 = {file = "k2.key"}
[[route]]
name = "gh"
path = "/hooks/github"
upstream = "{{UPSTREAM}}"
policy = "routes.gh"
{{ROUTE}}
`

// sealTree writes the gateway's files into a temp dir; the decision log path is relative,
// so the test runs in that dir.
func sealTree(t *testing.T) string {
	t.Helper()
	dir := writeTree(t, map[string]string{
		"gh.secret":        "s3cret",
		"k1.key":           strings.Repeat("1f", 32),
		"k2.key":           strings.Repeat("2e", 32),
		"policies/gh.rego": ghPolicy,
	})
	t.Chdir(dir)
	return dir
}

// writeSealConfig writes gateway.toml (or name) from sealConfig and returns its path.
func writeSealConfig(t *testing.T, dir, name, keys, route, upstream string) string {
	t.Helper()
	cfg := strings.NewReplacer("{{KEYS}}", keys, "{{ROUTE}}", route, "{{UPSTREAM}}", upstream).Replace(sealConfig)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// runGateway runs the real gateway on cfg until the returned stop is called.
func runGateway(t *testing.T, cfg string) (pub, admin string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	g, err := gateway.New(ctx, cfg, gateway.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Ready:  func(*gateway.Gateway) { close(ready) },
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx, 5*time.Second) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("gateway.Run: %v", err)
	}
	p, a := g.Addrs()
	var once atomic.Bool
	stop = func() {
		if once.CompareAndSwap(false, true) {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("gateway.Run: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return "http://" + p.String(), "http://" + a.String(), stop
}

// logLines waits until the decision log in dir has a line for which match is true, and
// returns the file's bytes and that line.
func logLines(t *testing.T, dir string, match func(m map[string]any) bool) ([]byte, map[string]any) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		raw, _ := os.ReadFile(filepath.Join(dir, "decisions.log"))
		for _, line := range bytes.Split(raw, []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && match(m) {
				return raw, m
			}
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "decisions.log"))
	t.Fatalf("no such decision-log line in:\n%s", raw)
	return nil, nil
}

// startRefusingUpstream answers status until accept is set, then 200, counting the requests.
func startRefusingUpstream(t *testing.T, status int) (url string, accept *atomic.Bool, reached *atomic.Int32) {
	t.Helper()
	accept, reached = &atomic.Bool{}, &atomic.Int32{}
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		if !accept.Load() {
			w.WriteHeader(status)
		}
	})}
	go up.Serve(uln) //nolint:errcheck
	t.Cleanup(func() { _ = up.Close() })
	return "http://" + uln.Addr().String(), accept, reached
}

// hookwall is runCLI that fails the test unless the command exits want.
func hookwall(t *testing.T, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	code, stdout, stderr := runCLI(t, args...)
	if code != want {
		t.Fatalf("hookwall %v: exit %d, want %d\n%s%s", args, code, want, stdout, stderr)
	}
	return stdout, stderr
}

// With encryption_keys the decision log's captured body is sealed: the file holds no byte
// of it in the clear, and `hookwall decisions open` gives it back byte for byte with the
// config's keys; a retired or changed key fails, naming the key and what to do.
func TestDecisionLogBodySealed(t *testing.T) {
	up := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) })}
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(uln) //nolint:errcheck
	defer up.Close()
	dir := sealTree(t)
	cfg := writeSealConfig(t, dir, "gateway.toml", `["k1"]`, "", "http://"+uln.Addr().String())
	pub, _, stop := runGateway(t, cfg)

	// Not UTF-8 in the middle: a log in the clear could not give these bytes back.
	body := []byte("{\"card\":\"PAN-4111-1111-1111-1111\",\"raw\":\"\xff\xfe\x00\x01\"}")
	r, err := http.DefaultClient.Do(githubWebhook(pub+"/hooks/github", body))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("webhook: %d", r.StatusCode)
	}
	stop() // the log is flushed and closed
	raw, line := logLines(t, dir, func(m map[string]any) bool { return m["outcome"] == "allowed" })
	if bytes.Contains(raw, []byte("PAN-4111")) || bytes.Contains(raw, []byte(`"body":`)) {
		t.Fatalf("the decision log holds the body in the clear:\n%s", raw)
	}
	req := line["request"].(map[string]any)
	if req["body_key"] != "k1" || req["body_sealed"] == nil || req["body_bytes"] != float64(len(body)) {
		t.Fatalf("request: %v", req)
	}
	id := line["decision_id"].(string)

	// A record that names the id inside a label (a policy that copies a client's JSON there)
	// is not the id's: only a line's own decision_id, its first field, is.
	spoof := `{"decision_id":"evil-1","labels":{"meta":{"decision_id":"` + id + `"}},"request":{"method":"POST","path":"/","body":"{\"amount\":999999}"}}` + "\n"
	logPath := filepath.Join(dir, "decisions.log")
	logged, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath, append(append([]byte(nil), logged...), spoof...), 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ := hookwall(t, 0, "decisions", "open", "-c", cfg, "--id", id, "--raw")
	if got != string(body) {
		t.Fatalf("opened body %q, want %q", got, body)
	}
	// Flags after the file, as test and eval take them.
	if got, _ := hookwall(t, 0, "decisions", "open", logPath, "-c", cfg, "--id", id, "--raw"); got != string(body) {
		t.Fatalf("with the flags after the file: opened body %q, want %q", got, body)
	}
	if err := os.WriteFile(logPath, logged, 0o600); err != nil {
		t.Fatal(err)
	}
	got, _ = hookwall(t, 0, "decisions", "open", "-c", cfg, filepath.Join(dir, "decisions.log"))
	var opened struct {
		DecisionID string `json:"decision_id"`
		Request    map[string]any
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(got)), &opened); err != nil || opened.DecisionID != id {
		t.Fatalf("opened log: %v\n%s", err, got)
	}
	if b, _ := opened.Request["body"].(string); !strings.HasPrefix(b, `{"card":"PAN-4111-1111-1111-1111","raw":"`) || opened.Request["body_sealed"] != nil || opened.Request["body_key"] != nil {
		t.Fatalf("opened line's request: %v", opened.Request)
	}

	// k1 retired: the line names it and says what to do.
	retired := writeSealConfig(t, dir, "retired.toml", `["k2"]`, "", "http://"+uln.Addr().String())
	_, msg := hookwall(t, 1, "decisions", "open", "-c", retired, "decisions.log")
	for _, want := range []string{"decisions.log:1: decision " + id, `sealed with key "k1", which is not in encryption_keys`, `add the secret that was "k1" to [secrets] and to [delivery] encryption_keys of ` + retired} {
		if !strings.Contains(msg, want) {
			t.Fatalf("retired key: %q lacks %q", msg, want)
		}
	}
	// k1 with another value: it does not open, and says so.
	if err := os.WriteFile(filepath.Join(dir, "k1.key"), []byte(strings.Repeat("3d", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, msg := hookwall(t, 1, "decisions", "open", "-c", cfg, "decisions.log")
	if out != "" || !strings.Contains(msg, `sealed with key "k1" but does not open with it`) {
		t.Fatalf("changed key: %q %q", out, msg)
	}
	// No keys at all: the command refuses the sealed line rather than printing it.
	plain := writeSealConfig(t, dir, "plain.toml", `[]`, "", "http://"+uln.Addr().String())
	if _, msg := hookwall(t, 1, "decisions", "open", "-c", plain, "decisions.log"); !strings.Contains(msg, `sealed with key "k1", but `+plain+` has no [delivery] encryption_keys`) {
		t.Fatalf("no keys: %q", msg)
	}
}

// A queued delivery sealed with a key that was then retired cannot be opened: it is held,
// pending and never attempted nor made dead, the hold counted by the refused metric; with
// the key back it is delivered, no replay needed.
func TestRetiredKeyDeliveryIsHeldUntilTheKeyIsBack(t *testing.T) {
	upURL, accept, reached := startRefusingUpstream(t, http.StatusServiceUnavailable)
	dir := sealTree(t)
	const queued = "delivery = \"queued\"\nretry = [\"1500ms\", \"1h\"]"
	cfg1 := writeSealConfig(t, dir, "k1.toml", `["k1"]`, queued, upURL)
	pub, _, stop := runGateway(t, cfg1)
	r, err := http.DefaultClient.Do(githubWebhook(pub+"/hooks/github", []byte(`{"n":1}`)))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	id := r.Header.Get("Hookwall-Delivery-Id")
	if r.StatusCode != 202 || id == "" {
		t.Fatalf("webhook: %d %q", r.StatusCode, id)
	}
	for end := time.Now().Add(5 * time.Second); reached.Load() == 0 && time.Now().Before(end); {
		time.Sleep(10 * time.Millisecond)
	}
	stop() // pending, its second attempt due 1.5s after the first: under k1
	if reached.Load() != 1 {
		t.Fatalf("first attempt: %d requests reached the upstream", reached.Load())
	}
	time.Sleep(1600 * time.Millisecond)

	cfg2 := writeSealConfig(t, dir, "k2.toml", `["k2"]`, queued, upURL)
	_, admin, stop := runGateway(t, cfg2)
	var metrics string
	for end := time.Now().Add(10 * time.Second); !strings.Contains(metrics, `hookwall_delivery_refused_total{reason="missing_key",route="gh"}`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("metrics lack the hold:\n%s", metrics)
		}
		metrics = httpBody(t, admin+"/metrics")
	}
	if !strings.Contains(metrics, `hookwall_delivery_depth{route="gh",state="pending"} 1`) || strings.Contains(metrics, `outcome="dead"`) {
		t.Fatalf("the held delivery is not pending alone:\n%s", metrics)
	}
	if reached.Load() != 1 {
		t.Fatalf("a delivery that does not open reached the upstream")
	}
	stop()
	if raw, _ := os.ReadFile(filepath.Join(dir, "decisions.log")); bytes.Contains(raw, []byte(`"outcome":"dead"`)) {
		t.Fatalf("the held delivery was made dead:\n%s", raw)
	}

	cfg3 := writeSealConfig(t, dir, "k21.toml", `["k2", "k1"]`, queued, upURL)
	accept.Store(true)
	_, admin, _ = runGateway(t, cfg3)
	_, line := logLines(t, dir, func(m map[string]any) bool { return m["outcome"] == "delivered" && m["delivery_id"] == id })
	if line["attempts"] != float64(2) || line["status"] != float64(200) {
		t.Fatalf("delivered line: %v", line)
	}
	// A delivered delivery replays too: delivered again, same id, its attempts counted on.
	hookwall(t, 0, "deliveries", "replay", id, "-c", cfg3, "--admin", admin)
	logLines(t, dir, func(m map[string]any) bool {
		return m["outcome"] == "delivered" && m["delivery_id"] == id && m["attempts"] == float64(3)
	})
	if reached.Load() != 3 {
		t.Fatalf("the upstream got %d requests, want 3 (one refused, two delivered)", reached.Load())
	}
}

func httpBody(t *testing.T, url string) string {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

// `hookwall deliveries rekey` moves a waiting delivery from k1 to k2: with k1 then retired
// it still opens and is delivered, where without the rekey it would be dead.
func TestDeliveriesRekey(t *testing.T) {
	upURL, accept, _ := startRefusingUpstream(t, http.StatusServiceUnavailable)
	dir := sealTree(t)
	const queued = "delivery = \"queued\"\nretry = [\"1h\"]"
	pub, _, stop := runGateway(t, writeSealConfig(t, dir, "k1.toml", `["k1"]`, queued, upURL))
	r, err := http.DefaultClient.Do(githubWebhook(pub+"/hooks/github", []byte(`{"n":"rekeyed"}`)))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	id := r.Header.Get("Hookwall-Delivery-Id")
	logLines(t, dir, func(m map[string]any) bool { return m["outcome"] == "queued" && m["delivery_id"] == id })
	stop()

	both := writeSealConfig(t, dir, "k21.toml", `["k2", "k1"]`, queued, upURL)
	_, admin, stop := runGateway(t, both)
	if out, _ := hookwall(t, 0, "deliveries", "rekey", "-c", both, "--admin", admin); !strings.Contains(out, `"resealed": 1`) {
		t.Fatalf("rekey: %s", out)
	}
	if out, _ := hookwall(t, 0, "deliveries", "rekey", "-c", both, "--admin", admin); !strings.Contains(out, `"resealed": 0`) {
		t.Fatalf("second rekey: %s", out)
	}
	stop()

	k2 := writeSealConfig(t, dir, "k2.toml", `["k2"]`, queued, upURL)
	_, admin, stop = runGateway(t, k2)
	accept.Store(true)
	hookwall(t, 0, "deliveries", "replay", id, "-c", k2, "--admin", admin) // due now, not in an hour
	_, line := logLines(t, dir, func(m map[string]any) bool {
		return (m["outcome"] == "delivered" || m["outcome"] == "dead") && m["delivery_id"] == id
	})
	if line["outcome"] != "delivered" {
		t.Fatalf("after rekey and retiring k1: %v", line)
	}
	stop() // the SQLite file belongs to one gateway at a time

	// Without keys there is nothing to seal with: the command says so.
	plain := writeSealConfig(t, dir, "plain.toml", `[]`, queued, upURL)
	_, admin, _ = runGateway(t, plain)
	if _, msg := hookwall(t, 1, "deliveries", "rekey", "-c", plain, "--admin", admin); !strings.Contains(msg, "409") || !strings.Contains(msg, "no [delivery] encryption_keys") {
		t.Fatalf("rekey without keys: %s", msg)
	}
}
