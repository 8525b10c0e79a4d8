package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type evalResult struct {
	Route     string                `json:"route"`
	Outcome   string                `json:"outcome"`
	Status    int                   `json:"status"`
	Allow     bool                  `json:"allow"`
	Deny      []string              `json:"deny"`
	Reasons   []string              `json:"reasons"`
	Evaluated bool                  `json:"evaluated"`
	Labels    map[string]any        `json:"labels"`
	Error     string                `json:"error"`
	Filters   []map[string]any      `json:"filters"`
	Dedupe    *struct{ Key string } `json:"dedupe"`
	RateLimit *struct {
		Key   string
		Limit int
		Per   string
	} `json:"rate_limit"`
	UpstreamHeaders map[string]string `json:"upstream_headers"`
	Forwarded       *struct {
		Set map[string]string `json:"headers_set"`
	} `json:"forwarded"`
	Shadow *struct {
		Policy string `json:"policy"`
		Agree  bool   `json:"agree"`
		Status int    `json:"status"`
	} `json:"shadow"`
	Input   map[string]any `json:"input"`
	Explain []string       `json:"explain"`
	Request struct {
		Method, Path string
		RemoteIP     string `json:"remote_ip"`
	} `json:"request"`
}

func evalCLI(t *testing.T, args ...string) (int, evalResult, string) {
	t.Helper()
	code, out, errs := runCLI(t, append([]string{"eval"}, args...)...)
	var r evalResult
	if code == 0 {
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("stdout is not the JSON decision: %v\n%s", err, out)
		}
	}
	return code, r, errs
}

// TestEvalShippedConfig evaluates the recorded requests in examples/requests against the
// default gateway.toml: the demo GitHub route with its filters and policy.
func TestEvalShippedConfig(t *testing.T) {
	cfg := "../../gateway.toml"
	cases := []struct {
		file    string
		outcome string
		status  int
		reason  string
	}{
		{"github-push.http", "allowed", 0, ""},
		{"github-push.trace", "allowed", 0, ""}, // curl --trace of the same delivery
		{"github-bad-signature.http", "denied", 401, "signature: signature mismatch"},
		{"github-unknown-event.http", "denied", 422, `event "deployment" is not accepted`},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			code, r, errs := evalCLI(t, "-c", cfg, "--route", "github", "--request", filepath.Join("../../examples/requests", c.file))
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errs)
			}
			if r.Outcome != c.outcome || r.Status != c.status || r.Route != "github" || !r.Evaluated {
				t.Fatalf("got %+v, want %s %d", r, c.outcome, c.status)
			}
			if c.reason != "" && (len(r.Reasons) != 1 || r.Reasons[0] != c.reason || r.Allow) {
				t.Fatalf("reasons %q allow %v, want [%q]", r.Reasons, r.Allow, c.reason)
			}
			if c.outcome == "allowed" {
				if r.Labels["event"] != "push" || r.Dedupe == nil || r.Dedupe.Key != "github:5d67c559d639b2ea0d9d44a2b0137e0d8fa5268eb3f5b07786a91efd25a46dae" || r.RateLimit == nil || r.RateLimit.Limit != 600 {
					t.Fatalf("allowed decision: %+v", r)
				}
				// The tiny filter tags what is forwarded with the route name.
				if r.Forwarded == nil || r.Forwarded.Set["X-Hookwall-Route"] != "github" {
					t.Fatalf("eval does not show what the filters changed in the forwarded request: %+v", r.Forwarded)
				}
			} else if r.Forwarded != nil {
				t.Fatalf("a refused request is not forwarded: %+v", r.Forwarded)
			}
			for _, f := range r.Filters {
				if f["outcome"] != "next" {
					t.Errorf("filter %v: the shipped filters pass a valid JSON delivery", f)
				}
			}
		})
	}
}

const evalConfig = `
[server]
max_body = "1KiB"
trusted_proxies = ["10.0.0.0/8"]

[secrets]
hook = {file = "hook.secret"}

[[filter]]
name = "guard"
module = %q

[[route]]
name = "hook"
path = "/hooks/hook"
methods = ["POST"]
upstream = "http://%s"
policy = "routes.hook"
shadow_policy = "routes.hook_v2"
filters = ["guard"]
`

const evalPolicy = `package routes.hook

sig := hookwall.webhook.verify("github", input.request, {"secret": "hook"})

default allow := false

allow if {
	sig.valid
	input.filters.guard.labels.verdict == "ok"
}

deny contains sprintf("signature: %s", [sig.reason]) if not sig.valid

status := 401 if not sig.valid

dedupe := {"key": input.request.headers["x-delivery"], "ttl": "1h"} if input.request.headers["x-delivery"]

upstream_headers := {"X-Client": input.request.remote_ip}
`

// The v2 policy under trial also wants a tenant header.
const evalPolicyV2 = `package routes.hook_v2

default allow := false

allow if {
	hookwall.webhook.verify("github", input.request, {"secret": "hook"}).valid
	input.request.headers["x-tenant"]
}

status := 403
`

func signedRequest(body string, extra ...string) string {
	head := "POST /hooks/hook HTTP/1.1\nHost: hooks.example.com\nContent-Type: application/json\nX-Hub-Signature-256: " + githubSignature("hook-secret", body) + "\n"
	for _, h := range extra {
		head += h + "\n"
	}
	return head + fmt.Sprintf("Content-Length: %d\n\n", len(body)) + body
}

func githubSignature(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

func startEvalConfig(t *testing.T) (dir string, hits *atomic.Int64) {
	t.Helper()
	// The upstream records anything that reaches it: eval must never forward.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hits = &atomic.Int64{}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	guard, err := filepath.Abs("../../engine/gateway/testdata/denyheader.wasm")
	if err != nil {
		t.Fatal(err)
	}
	dir = writeTree(t, map[string]string{
		"gateway.toml":         fmt.Sprintf(evalConfig, guard, ln.Addr()),
		"hook.secret":          "hook-secret\n",
		"policies/hook.rego":   evalPolicy,
		"policies/hookv2.rego": evalPolicyV2,
		"ok.http":              signedRequest(`{"a":1}`, "X-Delivery: d-1", "X-Forwarded-For: 198.51.100.7"),
		"forged.http":          strings.Replace(signedRequest(`{"a":1}`), `{"a":1}`, `{"a":2}`, 1),
		"filtered.http":        signedRequest(`{"a":1}`, "X-Deny: 1"),
		"trap.http":            signedRequest(`{"a":1}`, "X-Trap: 1"),
		"big.http":             signedRequest(strings.Repeat("x", 2000)),
		"get.http":             "GET /hooks/hook HTTP/1.1\nHost: h\n\n",
		"garbage.http":         "this is not a request\n",
	})
	return dir, hits
}

func TestEvalAllowAndDenyWithReasons(t *testing.T) {
	dir, hits := startEvalConfig(t)
	cfg := filepath.Join(dir, "gateway.toml")
	req := func(name string) string { return filepath.Join(dir, name) }

	// Allowed, twice: the dedupe key is reported, never claimed.
	for i := range 2 {
		code, r, errs := evalCLI(t, "-c", cfg, "--route", "hook", "--request", req("ok.http"), "--remote-ip", "10.1.2.3")
		if code != 0 || r.Outcome != "allowed" || r.Status != 0 || !r.Allow || len(r.Reasons) != 0 {
			t.Fatalf("run %d: exit %d %+v %s", i, code, r, errs)
		}
		if r.Dedupe == nil || r.Dedupe.Key != "d-1" {
			t.Fatalf("dedupe %+v", r.Dedupe)
		}
		// The peer is a trusted proxy: the policy saw the client from X-Forwarded-For.
		if r.UpstreamHeaders["X-Client"] != "198.51.100.7" {
			t.Fatalf("remote_ip as the policy saw it: %v", r.UpstreamHeaders)
		}
		if len(r.Filters) != 1 || r.Filters[0]["outcome"] != "next" || r.Filters[0]["labels"].(map[string]any)["verdict"] != "ok" {
			t.Fatalf("filter outcome: %v", r.Filters)
		}
		// The shadow policy wants X-Tenant: it disagrees, and says so.
		if r.Shadow == nil || r.Shadow.Policy != "routes.hook_v2" || r.Shadow.Agree || r.Shadow.Status != 403 {
			t.Fatalf("shadow %+v", r.Shadow)
		}
	}

	code, r, _ := evalCLI(t, "-c", cfg, "--route", "hook", "--request", req("forged.http"))
	if code != 0 || r.Outcome != "denied" || r.Status != 401 || r.Allow || len(r.Reasons) != 1 || r.Reasons[0] != "signature: signature mismatch" {
		t.Fatalf("forged: exit %d %+v", code, r)
	}
	code, r, _ = evalCLI(t, "-c", cfg, "--route", "hook", "--request", req("filtered.http"))
	if code != 0 || r.Outcome != "filtered" || r.Status != 403 || r.Evaluated || r.Filters[0]["outcome"] != "denied" || r.Reasons[0] != "filter guard denied" {
		t.Fatalf("filtered: exit %d %+v", code, r)
	}
	code, r, _ = evalCLI(t, "-c", cfg, "--route", "hook", "--request", req("trap.http"))
	if code != 0 || r.Outcome != "error" || r.Status != 500 || r.Filters[0]["outcome"] != "error" {
		t.Fatalf("trap: exit %d %+v", code, r)
	}
	code, r, _ = evalCLI(t, "-c", cfg, "--route", "hook", "--request", req("big.http"))
	if code != 0 || r.Outcome != "too_large" || r.Status != 413 {
		t.Fatalf("over max_body: exit %d %+v", code, r)
	}
	code, r, _ = evalCLI(t, "-c", cfg, "--route", "hook", "--request", req("get.http"))
	if code != 0 || r.Outcome != "method_not_allowed" || r.Status != 405 {
		t.Fatalf("GET: exit %d %+v", code, r)
	}
	// Without --route, the request is routed as the gateway would.
	code, r, _ = evalCLI(t, "-c", cfg, req("ok.http"))
	if code != 0 || r.Route != "hook" || r.Outcome != "allowed" {
		t.Fatalf("routed: exit %d %+v", code, r)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("the upstream received %d requests: eval must not forward", n)
	}
}

func TestEvalExplainAndInput(t *testing.T) {
	dir, _ := startEvalConfig(t)
	code, r, errs := evalCLI(t, "-c", filepath.Join(dir, "gateway.toml"), "--route", "hook", "--request", filepath.Join(dir, "forged.http"), "--explain", "--input", "--format", "json")
	if code != 0 {
		t.Fatalf("exit %d %s", code, errs)
	}
	trace := strings.Join(r.Explain, "\n")
	for _, want := range []string{"Enter data.routes.hook.allow", "hookwall.webhook.verify(\"github\"", "signature mismatch", "Fail data.routes.hook.sig.valid"} {
		if !strings.Contains(trace, want) {
			t.Errorf("--explain lacks %q:\n%s", want, trace)
		}
	}
	req, _ := r.Input["request"].(map[string]any)
	if req == nil || req["body"] != `{"a":2}` || req["path"] != "/hooks/hook" {
		t.Errorf("--input: %v", r.Input)
	}
	code, r, _ = evalCLI(t, "-c", filepath.Join(dir, "gateway.toml"), "--route", "hook", "--request", filepath.Join(dir, "forged.http"), "--explain=fails", "--format=json")
	if code != 0 || len(r.Explain) == 0 || strings.Contains(strings.Join(r.Explain, "\n"), "| Eval ") {
		t.Errorf("--explain=fails keeps only the failures: %v", r.Explain)
	}
	if code, _, _ := runCLI(t, "eval", "-c", filepath.Join(dir, "gateway.toml"), "--request", filepath.Join(dir, "ok.http"), "--explain=loud"); code != 2 {
		t.Errorf("bad --explain mode: exit %d", code)
	}
}

// TestEvalExplainReadable: by default the trace follows the decision as text, as opa eval
// --explain prints it, not as a JSON array of escaped strings.
func TestEvalExplainReadable(t *testing.T) {
	dir, _ := startEvalConfig(t)
	code, out, errs := runCLI(t, "eval", "-c", filepath.Join(dir, "gateway.toml"), "--route", "hook", "--request", filepath.Join(dir, "forged.http"), "--explain")
	if code != 0 {
		t.Fatalf("exit %d %s", code, errs)
	}
	decision, trace, ok := strings.Cut(out, "\nexplain (full):\n")
	if !ok {
		t.Fatalf("no explain section after the decision:\n%s", out)
	}
	var r evalResult
	if err := json.Unmarshal([]byte(decision), &r); err != nil || r.Outcome != "denied" || r.Explain != nil {
		t.Fatalf("the decision comes first, as JSON without the trace: %v %+v", err, r)
	}
	for _, want := range []string{"Enter data.routes.hook.allow", `hookwall.webhook.verify("github"`, "Fail data.routes.hook.sig.valid"} {
		if !strings.Contains(trace, want) {
			t.Errorf("trace lacks %q:\n%s", want, trace)
		}
	}
	if lines := strings.Split(strings.TrimSpace(trace), "\n"); len(lines) < 5 || strings.HasPrefix(lines[0], "[") || strings.HasPrefix(lines[0], `"`) {
		t.Errorf("the trace is not one text line per event:\n%s", trace)
	}
}

// TestEvalNowReplaysATimestampedRequest: a Stripe delivery recorded an hour ago is stale now,
// and allowed with the clock set to when it arrived.
func TestEvalNowReplaysATimestampedRequest(t *testing.T) {
	const secret = "whsec_replay"
	body := `{"id":"evt_1","type":"invoice.paid"}`
	signed := time.Now().Add(-time.Hour).Unix()
	mac := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(mac, "%d.%s", signed, body)
	sig := fmt.Sprintf("t=%d,v1=%s", signed, hex.EncodeToString(mac.Sum(nil)))
	dir := writeTree(t, map[string]string{
		"gateway.toml":        "[secrets]\nstripe = {file = \"stripe.secret\"}\n\n[[route]]\nname = \"stripe\"\npath = \"/hooks/stripe\"\nupstream = \"http://127.0.0.1:1\"\npolicy = \"routes.stripe\"\n",
		"stripe.secret":       secret + "\n",
		"policies/route.rego": "package routes.stripe\n\nsig := hookwall.webhook.verify(\"stripe\", input.request, {\"secret\": \"stripe\"})\n\nallow if sig.valid\n\ndeny contains sig.reason if not sig.valid\n",
		"stripe.http":         fmt.Sprintf("POST /hooks/stripe HTTP/1.1\nHost: h\nContent-Type: application/json\nStripe-Signature: %s\nContent-Length: %d\n\n%s", sig, len(body), body),
	})
	cfg, req := filepath.Join(dir, "gateway.toml"), filepath.Join(dir, "stripe.http")
	code, r, errs := evalCLI(t, "-c", cfg, "--request", req)
	if code != 0 || r.Outcome != "denied" || len(r.Reasons) != 1 || !strings.Contains(r.Reasons[0], "timestamp outside tolerance") {
		t.Fatalf("an hour later the delivery is stale: exit %d %+v %s", code, r, errs)
	}
	for _, now := range []string{fmt.Sprint(signed + 10), time.Unix(signed+10, 0).UTC().Format(time.RFC3339)} {
		code, r, errs = evalCLI(t, "-c", cfg, "--request", req, "--now", now)
		if code != 0 || r.Outcome != "allowed" || !r.Allow {
			t.Fatalf("--now %s: exit %d %+v %s", now, code, r, errs)
		}
	}
	if code, _, errs := runCLI(t, "eval", "-c", cfg, "--request", req, "--now", "yesterday"); code != 2 || !strings.Contains(errs, "RFC 3339") {
		t.Fatalf("--now yesterday: exit %d %s", code, errs)
	}
}

func TestEvalErrors(t *testing.T) {
	dir, _ := startEvalConfig(t)
	cfg := filepath.Join(dir, "gateway.toml")
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-c", cfg, "--route", "nope", "--request", filepath.Join(dir, "ok.http")}, 1, `no such route "nope" (routes: hook)`},
		{[]string{"-c", cfg, "--request", filepath.Join(dir, "garbage.http")}, 1, "garbage.http: rawreq: line 1"},
		{[]string{"-c", cfg, "--request", filepath.Join(dir, "missing.http")}, 1, "missing.http"},
		{[]string{"-c", filepath.Join(dir, "none.toml"), "--request", filepath.Join(dir, "ok.http")}, 1, "none.toml"},
		{[]string{"-c", cfg}, 2, "usage: hookwall eval"},
		{[]string{"-c", cfg, "--request", filepath.Join(dir, "ok.http"), "--remote-ip", "nope"}, 2, "not an IP"},
	}
	for _, c := range cases {
		code, _, errs := runCLI(t, append([]string{"eval"}, c.args...)...)
		if code != c.code || !strings.Contains(errs, c.want) {
			t.Errorf("eval %v: exit %d, stderr %q; want %d and %q", c.args, code, errs, c.code, c.want)
		}
	}
}

// TestSIGUSR1ReopensTheDecisionLog runs the real binary, moves its decision log away as
// logrotate does, sends SIGUSR1, and checks that the next records go to a new file.
func TestSIGUSR1ReopensTheDecisionLog(t *testing.T) {
	bin := hookwallBinary(t)
	pub, adm := freePort(t), freePort(t)
	dir := writeTree(t, map[string]string{
		"gateway.toml": fmt.Sprintf(`
[server]
listen = %q
[admin]
listen = %q
[log]
decisions = "decisions.log"
[[route]]
name = "r"
path = "/r"
upstream = "http://127.0.0.1:1"
policy = "routes.r"
`, pub, adm),
		"policies/r.rego": "package routes.r\n\nallow := false\n",
	})
	logPath := filepath.Join(dir, "decisions.log")
	cmd, logs := startHookwall(t, bin, dir, adm)
	hit := func() {
		r, err := http.Post("http://"+pub+"/r", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	lines := func(p string) int {
		b, _ := os.ReadFile(p)
		return strings.Count(string(b), "\n")
	}
	waitLines := func(p string, n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for lines(p) != n {
			if time.Now().After(deadline) {
				t.Fatalf("%s has %d records, want %d", p, lines(p), n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	hit()
	waitLines(logPath, 1)
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if !waitLine(logs, "decision log reopened", 5*time.Second) {
		t.Fatal("no \"decision log reopened\" line after SIGUSR1")
	}
	hit()
	hit()
	waitLines(logPath, 2)
	if n := lines(logPath + ".1"); n != 1 {
		t.Fatalf("the rotated file got %d records, want 1", n)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
}

// TestEvalShowsTheResponsePhase: eval runs an allowed request's response phase on a 200 answer
// and shows what it changed: respbody replaces the body, redacttrap redacts it and marks it.
func TestEvalShowsTheResponsePhase(t *testing.T) {
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	dir := writeTree(t, map[string]string{
		"gateway.toml": fmt.Sprintf(`
[[filter]]
name = "respbody"
module = %q
config = "\u0001"

[[filter]]
name = "trap"
module = %q

[[route]]
name = "body"
path = "/body"
upstream = "http://127.0.0.1:1"
policy = "routes.open"
filters = ["respbody"]

[[route]]
name = "trap"
path = "/deny/trap"
upstream = "http://127.0.0.1:1"
policy = "routes.open"
filters = ["trap"]
`, abs("../../engine/filter/testdata/respbody.wasm"), abs("../../engine/filter/testdata/redacttrap.wasm")),
		"policies/open.rego": "package routes.open\n\nallow := true\n",
		"body.http":          "POST /body HTTP/1.1\nHost: h\n\n{}",
		"trap.http":          "POST /deny/trap HTTP/1.1\nHost: h\n\n{}",
	})
	cfg := filepath.Join(dir, "gateway.toml")
	code, out, errs := runCLI(t, "eval", "-c", cfg, "--request", filepath.Join(dir, "body.http"))
	if code != 0 {
		t.Fatalf("exit %d %s", code, errs)
	}
	var r struct {
		Outcome       string `json:"outcome"`
		ResponsePhase *struct {
			Upstream string `json:"upstream"`
			Changes  struct {
				Body *struct{ From, To string } `json:"body"`
			} `json:"changes"`
			Failed []map[string]any `json:"failed"`
		} `json:"response_phase"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Outcome != "allowed" || r.ResponsePhase == nil || r.ResponsePhase.Changes.Body == nil || r.ResponsePhase.Changes.Body.To != "replaced!" || len(r.ResponsePhase.Failed) != 0 {
		t.Fatalf("respbody's response phase: %s", out)
	}
	code, out, errs = runCLI(t, "eval", "-c", cfg, "--request", filepath.Join(dir, "trap.http"))
	if code != 0 {
		t.Fatalf("exit %d %s", code, errs)
	}
	// redacttrap redacts an answer without an x-trap header.
	if !strings.Contains(out, `"to": "[redacted]"`) || !strings.Contains(out, `"X-Redacted": "done"`) {
		t.Fatalf("redacttrap's response phase: %s", out)
	}
}

// TestEvalOutputBytes pins `hookwall eval`'s JSON byte for byte (timings and the revision
// hash aside) for each outcome a route gives: the typed outcomes print the strings they
// always printed.
func TestEvalOutputBytes(t *testing.T) {
	dir, _ := startEvalConfig(t)
	varying := regexp.MustCompile(`("us": )\d+|("revision": ")[0-9a-f]+`)
	for _, c := range []struct{ request, want string }{
		{"ok.http", "{\n  \"route\": \"hook\",\n  \"policy\": \"routes.hook\",\n  \"revision\": \"N\",\n  \"outcome\": \"allowed\",\n  \"allow\": true,\n  \"deny\": [],\n  \"reasons\": [],\n  \"evaluated\": true,\n  \"labels\": {},\n  \"filters\": [\n    {\n      \"name\": \"guard\",\n      \"outcome\": \"next\",\n      \"labels\": {\n        \"verdict\": \"ok\"\n      },\n      \"us\": N\n    }\n  ],\n  \"dedupe\": {\n    \"key\": \"d-1\",\n    \"ttl\": \"1h0m0s\"\n  },\n  \"upstream_headers\": {\n    \"X-Client\": \"127.0.0.1\"\n  },\n  \"forwarded\": {},\n  \"shadow\": {\n    \"Policy\": \"routes.hook_v2\",\n    \"Allow\": false,\n    \"Deny\": null,\n    \"Status\": 403,\n    \"Error\": \"\",\n    \"Agree\": false\n  },\n  \"request\": {\n    \"method\": \"POST\",\n    \"path\": \"/hooks/hook\",\n    \"remote_ip\": \"127.0.0.1\",\n    \"body_bytes\": 7\n  }\n}\n"},
		{"forged.http", "{\n  \"route\": \"hook\",\n  \"policy\": \"routes.hook\",\n  \"revision\": \"N\",\n  \"outcome\": \"denied\",\n  \"status\": 401,\n  \"allow\": false,\n  \"deny\": [\n    \"signature: signature mismatch\"\n  ],\n  \"reasons\": [\n    \"signature: signature mismatch\"\n  ],\n  \"evaluated\": true,\n  \"labels\": {},\n  \"filters\": [\n    {\n      \"name\": \"guard\",\n      \"outcome\": \"next\",\n      \"labels\": {\n        \"verdict\": \"ok\"\n      },\n      \"us\": N\n    }\n  ],\n  \"shadow\": {\n    \"Policy\": \"routes.hook_v2\",\n    \"Allow\": false,\n    \"Deny\": null,\n    \"Status\": 403,\n    \"Error\": \"\",\n    \"Agree\": false\n  },\n  \"request\": {\n    \"method\": \"POST\",\n    \"path\": \"/hooks/hook\",\n    \"remote_ip\": \"127.0.0.1\",\n    \"body_bytes\": 7\n  }\n}\n"},
		{"filtered.http", "{\n  \"route\": \"hook\",\n  \"policy\": \"routes.hook\",\n  \"revision\": \"N\",\n  \"outcome\": \"filtered\",\n  \"status\": 403,\n  \"allow\": false,\n  \"deny\": [],\n  \"reasons\": [\n    \"filter guard denied\"\n  ],\n  \"evaluated\": false,\n  \"labels\": {},\n  \"filters\": [\n    {\n      \"name\": \"guard\",\n      \"outcome\": \"denied\",\n      \"us\": N\n    }\n  ],\n  \"request\": {\n    \"method\": \"POST\",\n    \"path\": \"/hooks/hook\",\n    \"remote_ip\": \"127.0.0.1\",\n    \"body_bytes\": 7\n  }\n}\n"},
		{"trap.http", "{\n  \"route\": \"hook\",\n  \"policy\": \"routes.hook\",\n  \"revision\": \"N\",\n  \"outcome\": \"error\",\n  \"status\": 500,\n  \"allow\": false,\n  \"deny\": [],\n  \"reasons\": [],\n  \"error\": \"filter/guard: trap: wasm error: unreachable\\nwasm stack trace:\\n\\t.$4() i64\",\n  \"evaluated\": false,\n  \"labels\": {},\n  \"filters\": [\n    {\n      \"name\": \"guard\",\n      \"outcome\": \"error\",\n      \"error\": \"filter/guard: trap: wasm error: unreachable\\nwasm stack trace:\\n\\t.$4() i64\",\n      \"us\": N\n    }\n  ],\n  \"request\": {\n    \"method\": \"POST\",\n    \"path\": \"/hooks/hook\",\n    \"remote_ip\": \"127.0.0.1\",\n    \"body_bytes\": 7\n  }\n}\n"},
		{"get.http", "{\n  \"route\": \"hook\",\n  \"policy\": \"routes.hook\",\n  \"revision\": \"N\",\n  \"outcome\": \"method_not_allowed\",\n  \"status\": 405,\n  \"allow\": false,\n  \"deny\": [],\n  \"reasons\": [],\n  \"evaluated\": false,\n  \"labels\": {},\n  \"filters\": [],\n  \"request\": {\n    \"method\": \"GET\",\n    \"path\": \"/hooks/hook\",\n    \"remote_ip\": \"127.0.0.1\",\n    \"body_bytes\": 0\n  }\n}\n"},
	} {
		code, out, errs := runCLI(t, "eval", "-c", filepath.Join(dir, "gateway.toml"), "--route", "hook", "--request", filepath.Join(dir, c.request))
		if got := varying.ReplaceAllString(out, "${1}${2}N"); code != 0 || got != c.want {
			t.Errorf("%s: exit %d %s\n%s\nwant:\n%s", c.request, code, errs, got, c.want)
		}
	}
}
