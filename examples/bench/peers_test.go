package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
)

// needPeer returns the path of a peer's binary. Without it the test is skipped on a
// developer's machine and fails in CI, which installs nginx and caddy.
func needPeer(t *testing.T, bin string) string {
	t.Helper()
	p, err := exec.LookPath(bin)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; CI installs it for the bench peer tests", bin)
		}
		t.Skipf("%s is not installed", bin)
	}
	return p
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func testPeerAddrs(t *testing.T) peerAddrs {
	return peerAddrs{
		Listen: freeAddr(t), Upstream: freeAddr(t), OPA: freeAddr(t), Metrics: freeAddr(t),
		Conns: 64, Dir: t.TempDir(),
	}
}

func TestBenchPeerConfigs(t *testing.T) {
	a := peerAddrs{Listen: "127.0.0.1:18083", Upstream: "127.0.0.1:18081", OPA: "127.0.0.1:18181",
		Metrics: "127.0.0.1:18094", Conns: 64, Dir: "/tmp/x"}
	ngx, err := renderPeer(nginxTmpl, "nginx", peerAddrs{Listen: a.Listen, Upstream: a.Upstream, Conns: 64, Dir: a.Dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"worker_processes 1;", "daemon off;", "pid /tmp/x/nginx.pid;", "access_log off;",
		"listen 127.0.0.1:18083;", "server 127.0.0.1:18081;", "keepalive 64;", "proxy_http_version 1.1;",
		`proxy_set_header Connection "";`, "client_body_temp_path /tmp/x/client_body;"} {
		if !strings.Contains(ngx, want) {
			t.Errorf("nginx.conf lacks %q:\n%s", want, ngx)
		}
	}
	if strings.Contains(ngx, "auth_request") || strings.Contains(ngx, "hw_opa") {
		t.Errorf("the plain nginx setup asks OPA:\n%s", ngx)
	}
	opa, err := renderPeer(nginxTmpl, "nginx-opa", a)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"auth_request /_opa;", "server 127.0.0.1:18181;", "proxy_pass http://hw_opa/;", "proxy_method POST;"} {
		if !strings.Contains(opa, want) {
			t.Errorf("nginx-opa's nginx.conf lacks %q:\n%s", want, opa)
		}
	}
	cf, err := renderPeer(caddyTmpl, "caddy", a)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"admin off", "auto_https off", "http://:18083 {", "bind 127.0.0.1",
		"reverse_proxy 127.0.0.1:18081 {", "keepalive_idle_conns_per_host 64", "http://:18094 {", "metrics"} {
		if !strings.Contains(cf, want) {
			t.Errorf("Caddyfile lacks %q:\n%s", want, cf)
		}
	}
	// Every peer the flag names has binaries and a row name, and renders a plan.
	for _, p := range peerSetups {
		if len(peerBinaries[p]) == 0 || peerRowNames[p] == "" {
			t.Errorf("peer %s: binaries %v, row %q", p, peerBinaries[p], peerRowNames[p])
		}
		pa := testPeerAddrs(t)
		plan, err := peerPlan(p, pa)
		if err != nil || len(plan) == 0 {
			t.Fatalf("peerPlan(%s): %v, %v", p, plan, err)
		}
		if last := plan[len(plan)-1]; last.ready != pa.Listen {
			t.Errorf("peer %s: the last process is ready on %s, want %s", p, last.ready, pa.Listen)
		}
		if fi, err := os.Stat(pa.Dir); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("peer %s: dir %v, %v", p, fi, err)
		}
	}
	if _, err := peerPlan("traefik", testPeerAddrs(t)); err == nil {
		t.Error("peerPlan of an unknown peer succeeded")
	}
}

// TestBenchPeerOPAPolicy holds the nginx-opa policy to its contract with OPA's default
// decision: defined (200) for the reference route's events, undefined (404, answered 403
// by nginx) otherwise.
func TestBenchPeerOPAPolicy(t *testing.T) {
	q := prepareBenchOPAPolicy(t)
	for _, c := range []struct {
		input any
		want  bool
	}{
		{map[string]any{"event": "push", "method": "POST", "path": "/reference"}, true},
		{map[string]any{"event": "release"}, true},
		{map[string]any{"event": "issues"}, false},
		{map[string]any{"event": ""}, false},
		{map[string]any{}, false},
	} {
		rs, err := q.Eval(context.Background(), rego.EvalInput(c.input))
		if err != nil {
			t.Fatal(err)
		}
		if got := len(rs) > 0; got != c.want {
			t.Errorf("input %v: allowed %v, want %v (%v)", c.input, got, c.want, rs)
		}
	}
}

func prepareBenchOPAPolicy(t *testing.T) rego.PreparedEvalQuery {
	t.Helper()
	q, err := rego.New(rego.Query("data.system.main"), rego.Module("policy.rego", opaPolicy)).PrepareForEval(context.Background())
	if err != nil {
		t.Fatalf("the nginx-opa policy does not compile: %v", err)
	}
	return q
}

func TestBenchPeerNginxConfigValid(t *testing.T) {
	nginx := needPeer(t, "nginx")
	for _, setup := range []string{"nginx", "nginx-opa"} {
		plan, err := peerPlan(setup, testPeerAddrs(t))
		if err != nil {
			t.Fatal(err)
		}
		argv := plan[len(plan)-1].argv
		out, err := exec.Command(nginx, append([]string{"-t"}, argv[1:]...)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "test is successful") {
			t.Errorf("%s: nginx -t: %v\n%s", setup, err, out)
		}
	}
}

func TestBenchPeerCaddyConfigValid(t *testing.T) {
	caddy := needPeer(t, "caddy")
	a := testPeerAddrs(t)
	plan, err := peerPlan("caddy", a)
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(a.Dir, "Caddyfile")
	cmd := exec.Command(caddy, "validate", "--config", conf, "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), plan[0].env...)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "Valid configuration") {
		t.Errorf("caddy validate: %v\n%s", err, out)
	}
	// Formatted as caddy fmt wants it: Caddy warns about the config at start otherwise.
	raw, _ := os.ReadFile(conf)
	out, err := exec.Command(caddy, "fmt", conf).Output()
	if err != nil || !bytes.Equal(bytes.TrimSpace(out), bytes.TrimSpace(raw)) {
		t.Errorf("caddy fmt changes the Caddyfile (%v):\n%s", err, out)
	}
}

// TestBenchPeersServe starts each installed peer against a test upstream and sends it a
// signed-looking webhook, as the benchmark does. For nginx-opa the authorizer is the real
// OPA when it is installed and otherwise a stand-in that evaluates the same policy with
// OPA's library and answers as OPA's default-decision API does.
func TestBenchPeersServe(t *testing.T) {
	for _, setup := range peerSetups {
		t.Run(setup, func(t *testing.T) {
			needPeer(t, peerBinaries[setup][0])
			a := testPeerAddrs(t)
			var hits atomic.Int64
			startTestUpstream(t, a.Upstream, &hits)
			plan, err := peerPlan(setup, a)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range plan {
				if p.name == "opa" {
					if _, err := exec.LookPath("opa"); err != nil {
						t.Log("opa is not installed: OPA's default decision API is stood in for")
						startFakeOPA(t, a.OPA)
						continue
					}
				}
				startTestPeerProc(t, p)
			}
			status, body := postWebhook(t, a.Listen, "push")
			if status != 200 || body != "ok" || hits.Load() != 1 {
				t.Fatalf("push through %s: %d %q, upstream hits %d", setup, status, body, hits.Load())
			}
			// Keep-alive to the client and to the upstream: a second request works too.
			if status, _ := postWebhook(t, a.Listen, "push"); status != 200 || hits.Load() != 2 {
				t.Fatalf("second push through %s: %d, upstream hits %d", setup, status, hits.Load())
			}
			if setup == "nginx-opa" {
				if status, _ := postWebhook(t, a.Listen, "issues"); status != 403 || hits.Load() != 2 {
					t.Fatalf("an event the policy does not allow: %d, upstream hits %d; want 403 and no forward", status, hits.Load())
				}
			}
			if setup == "caddy" {
				if n, ok := scrapeMallocs("http://" + a.Metrics + "/metrics"); !ok || n == 0 {
					t.Errorf("Caddy's metrics give no malloc count: %d %v", n, ok)
				}
			}
		})
	}
}

func startTestUpstream(t *testing.T, addr string, hits *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		if len(c.PostBody()) != 2048 {
			c.Error("body lost", 500)
			return
		}
		hits.Add(1)
		c.SetBodyString("ok")
	}}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown() })
}

// startFakeOPA answers POST / as OPA's default decision does: 200 with the value of
// data.system.main, 404 when it is undefined.
func startFakeOPA(t *testing.T, addr string) {
	t.Helper()
	q := prepareBenchOPAPolicy(t)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var input any
		if r.Method != "POST" || r.URL.Path != "/" || json.NewDecoder(r.Body).Decode(&input) != nil {
			http.Error(w, "bad request", 400)
			return
		}
		rs, err := q.Eval(r.Context(), rego.EvalInput(input))
		if err != nil || len(rs) == 0 {
			http.Error(w, `{"code":"undefined_document"}`, 404)
			return
		}
		json.NewEncoder(w).Encode(rs[0].Expressions[0].Value)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Close() })
}

func startTestPeerProc(t *testing.T, p peerProc) {
	t.Helper()
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Env = append(append(os.Environ(), "GOMAXPROCS=1"), p.env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = signalBenchProc(cmd, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = signalBenchProc(cmd, syscall.SIGKILL)
			<-done
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", p.name, logs.String())
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := waitTCP(ctx, p.ready, 10*time.Second); err != nil {
		t.Fatalf("%s did not start: %v\n%s", p.name, err, logs.String())
	}
}

func postWebhook(t *testing.T, addr, event string) (int, string) {
	t.Helper()
	body := benchBody(2048)
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://" + addr + "/reference")
	req.Header.SetMethod("POST")
	req.Header.SetContentType("application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-Hub-Signature-256", signGitHub([]byte("bench-secret"), body))
	req.SetBodyRaw(body)
	if err := fasthttp.DoTimeout(req, resp, 5*time.Second); err != nil {
		t.Fatalf("POST to %s: %v", addr, err)
	}
	return resp.StatusCode(), string(resp.Body())
}

// TestTreeCPU: a setup's CPU time includes its children's (nginx's worker under its master).
func TestTreeCPU(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sh -c 'while :; do :; done' & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = signalBenchProc(cmd, syscall.SIGKILL)
		_ = cmd.Wait()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for treeCPU(cmd.Process.Pid)-procCPU(cmd.Process.Pid) < 100*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("the busy child's CPU time is not counted: tree %v, parent %v",
				treeCPU(cmd.Process.Pid), procCPU(cmd.Process.Pid))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := treeCPU(1 << 30); got != -1 {
		t.Errorf("treeCPU of no process: %v", got)
	}
	if got := setupCPU([]int{cmd.Process.Pid, 1 << 30}); got != -1 {
		t.Errorf("setupCPU with a process gone: %v", got)
	}
}

// TestBenchFixedPortsDistinct: every setup the benchmark can start at once listens on a port
// of its own, its defaults and the reference configuration's listeners included; two on one
// port would fail the start ("already in use") of any run asking for both.
func TestBenchFixedPortsDistinct(t *testing.T) {
	cfg, err := config.Load("gateway.toml")
	if err != nil {
		t.Fatal(err)
	}
	upstream, err := benchUpstreamOf(cfg.Routes)
	if err != nil {
		t.Fatal(err)
	}
	addrs := map[string]string{
		"hookwall": cfg.Server.Listen, "admin": cfg.Admin.Listen, "upstream": upstream,
		"bare": benchBare, "control": benchControl, "nginx": benchNginx, "caddy": benchCaddy,
		"caddy metrics": benchCaddyMetrics, "nginx-opa": benchNginxOPA, "opa": benchOPA,
	}
	seen := map[string]string{}
	for name, a := range addrs {
		if other, ok := seen[a]; ok {
			t.Errorf("%s and %s both listen on %s", name, other, a)
		}
		seen[a] = name
	}
}
