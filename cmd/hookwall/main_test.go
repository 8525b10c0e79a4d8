package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "-v", "-version", "--version"} {
		var out, errs bytes.Buffer
		if code := run(context.Background(), []string{arg}, &out, &errs); code != 0 || !strings.HasPrefix(out.String(), "hookwall ") {
			t.Errorf("hookwall %s: exit %d, %q %q", arg, code, out.String(), errs.String())
		}
	}
	for _, arg := range []string{"help", "-h", "-help", "--help"} {
		var out, errs bytes.Buffer
		if code := run(context.Background(), []string{arg}, &out, &errs); code != 0 || !strings.Contains(out.String(), "\ncommands:\n") {
			t.Errorf("hookwall %s: exit %d, want the command list; got %q %q", arg, code, out.String(), errs.String())
		}
	}
	if code := run(context.Background(), []string{"frobnicate"}, io.Discard, io.Discard); code != 2 {
		t.Fatalf("unknown command: exit %d, want 2", code)
	}
}

// The load benchmark lives in examples/bench; the product binary has no bench commands.
func TestNoBenchCommands(t *testing.T) {
	var help bytes.Buffer
	run(context.Background(), []string{"help"}, &help, io.Discard)
	if strings.Contains(help.String(), "bench") {
		t.Errorf("the usage names a bench command:\n%s", help.String())
	}
	for _, cmd := range []string{"bench", "bench-node"} {
		if code := run(context.Background(), []string{cmd}, io.Discard, io.Discard); code != 2 {
			t.Errorf("hookwall %s: exit %d, want 2 (unknown command)", cmd, code)
		}
	}
}

func TestCheckDefaultConfig(t *testing.T) {
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"check", "-c", "../../gateway.toml"}, &out, &errb)
	if code != 0 {
		t.Fatalf("check of the shipped gateway.toml: exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "ok (revision ") {
		t.Fatalf("output %q", out.String())
	}
	// The demo policy is in the compiled fast path's subset, and check says so.
	if !strings.Contains(out.String(), "route github: policy routes.github, evaluator compiled\n") {
		t.Fatalf("check does not report the demo route's evaluator: %q", out.String())
	}
	if !strings.Contains(out.String(), "cross-check: 1% of compiled decisions, at most 50 a second, evaluated again with topdown; a divergence moves the route to opa until the next reload\n") {
		t.Fatalf("check does not report the cross-check: %q", out.String())
	}
}

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ghPolicy lets through what is signed as GitHub does with the secret gh.
const ghPolicy = "package routes.gh\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"gh\"}).valid\n"

// ghGateway is a gateway whose one route, gh at /hooks/github, sends to Upstream what
// ghPolicy lets through, with the secret gh from HW_TEST_SECRET and no decision log.
type ghGateway struct {
	Listen, Admin string // the [server] and [admin] listen addresses
	ServerKeys    string // more [server] lines
	AdminKeys     string // more [admin] lines
	LogKeys       string // more [log] lines
	Delivery      string // [delivery] lines; none: no such table
	Upstream      string // a URL
	RouteKeys     string // more route lines
}

// tree writes the gateway's gateway.toml and policies/gh.rego into a temp dir and returns it.
func (g ghGateway) tree(t *testing.T) string {
	t.Helper()
	delivery := ""
	if g.Delivery != "" {
		delivery = "[delivery]\n" + g.Delivery + "\n"
	}
	return writeTree(t, map[string]string{
		"gateway.toml": fmt.Sprintf(`
[server]
listen = %q
%s
[admin]
listen = %q
%s
[log]
decisions = "off"
%s
%s[secrets]
gh = {env = "HW_TEST_SECRET"}
[[route]]
name = "gh"
path = "/hooks/github"
upstream = %q
policy = "routes.gh"
%s
`, g.Listen, g.ServerKeys, g.Admin, g.AdminKeys, g.LogKeys, delivery, g.Upstream, g.RouteKeys),
		"policies/gh.rego": ghPolicy,
	})
}

const checkConfig = `
[[route]]
name = "a"
path = "/a"
upstream = "http://127.0.0.1:1"
policy = "routes.a"
`

func TestCheckReportsFileAndLine(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  *regexp.Regexp
	}{
		{"rego syntax error", map[string]string{
			"gateway.toml":         checkConfig,
			"policies/routes.rego": "package routes.a\n\nallow if {\n\tinput.x = = 1\n}\n",
		}, regexp.MustCompile(`routes\.rego:4: rego_parse_error`)},
		{"rego type error", map[string]string{
			"gateway.toml":         checkConfig,
			"policies/routes.rego": "package routes.a\n\nallow if {\n\tupper(1) == \"1\"\n}\n",
		}, regexp.MustCompile(`routes\.rego:4: rego_type_error`)},
		{"unsafe builtin", map[string]string{
			"gateway.toml":         checkConfig,
			"policies/routes.rego": "package routes.a\n\nallow if {\n\thttp.send({\"method\": \"GET\", \"url\": \"http://127.0.0.1:1\"}).status_code == 200\n}\n",
		}, regexp.MustCompile(`routes\.rego:4: .*http\.send`)},
		{"config key", map[string]string{
			"gateway.toml":         "[server]\nlisten = \"127.0.0.1:1\"\nmax_bdy = \"1MiB\"\n" + checkConfig,
			"policies/routes.rego": "package routes.a\nallow := true\n",
		}, regexp.MustCompile(`gateway\.toml:3: server\.max_bdy: unknown key`)},
		// Builtin arguments that would fail every request (or verify less than meant).
		{"scheme name", map[string]string{
			"gateway.toml":         checkConfig,
			"policies/routes.rego": "package routes.a\n\nallow if hookwall.webhook.verify(\"githb\", input.request, {}).valid\n",
		}, regexp.MustCompile(`routes\.rego:3: hookwall\.webhook\.verify: unknown scheme "githb" \(did you mean "github"\?\)`)},
		{"option name", map[string]string{
			"gateway.toml":         checkConfig,
			"policies/routes.rego": "package routes.a\n\nallow if hookwall.webhook.verify(\"github\", input.request, {\"tolerence\": \"5m\"}).valid\n",
		}, regexp.MustCompile(`routes\.rego:3: .*unknown opts key "tolerence" \(did you mean "tolerance"\?\)`)},
		{"secret name", map[string]string{
			"gateway.toml":         "[secrets]\ngithub = {file = \"gh.secret\"}\n" + checkConfig,
			"gh.secret":            "s3cret\n",
			"policies/routes.rego": "package routes.a\n\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"githib\"}).valid\n",
		}, regexp.MustCompile(`routes\.rego:3: .*no secret named "githib" in \[secrets\] \(did you mean "github"\?\)`)},
		{"hmac template without the body", map[string]string{
			"gateway.toml":         checkConfig,
			"policies/routes.rego": "package routes.a\n\nallow if hookwall.webhook.verify(\"hmac\", input.request, {\"header\": \"x-sig\", \"template\": \"{id}\", \"id_header\": \"x-id\"}).valid\n",
		}, regexp.MustCompile(`routes\.rego:3: .*template must sign \{body\}`)},
		{"missing package", map[string]string{
			"gateway.toml":         checkConfig,
			"policies/routes.rego": "package routes.b\nallow := true\n",
		}, regexp.MustCompile(`gateway\.toml:2: route\[1\] "a": policy: package "routes.a" is not defined`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeTree(t, c.files)
			var errb bytes.Buffer
			code := run(context.Background(), []string{"check", "-c", filepath.Join(dir, "gateway.toml")}, io.Discard, &errb)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", code, errb.String())
			}
			if !c.want.MatchString(errb.String()) {
				t.Fatalf("stderr does not match %s:\n%s", c.want, errb.String())
			}
		})
	}
}

// TestSIGTERMDrainsInFlight runs the real binary, holds a request in flight at a slow
// upstream, sends SIGTERM, and checks that the request completes and the process exits 0.
func TestSIGTERMDrainsInFlight(t *testing.T) {
	bin := hookwallBinary(t)
	// A slow upstream.
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reached := make(chan struct{}, 1)
	usrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
		time.Sleep(1500 * time.Millisecond)
		io.WriteString(w, "slow ok")
	})}
	go usrv.Serve(uln)
	defer usrv.Close()

	pub, adm := freePort(t), freePort(t)
	dir := ghGateway{Listen: pub, Admin: adm, Upstream: "http://" + uln.Addr().String()}.tree(t)
	cmd, logs := startHookwall(t, bin, dir, adm, "HW_TEST_SECRET=s3cret")

	body := []byte(`{"in":"flight"}`)
	req := githubWebhook("http://"+pub+"/hooks/github", body)
	type result struct {
		status int
		body   string
		err    error
	}
	done := make(chan result, 1)
	go func() {
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		done <- result{status: r.StatusCode, body: string(b)}
	}()
	select {
	case <-reached:
	case <-time.After(5 * time.Second):
		t.Fatal("request never reached the upstream")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	res := <-done
	if res.err != nil || res.status != 200 || res.body != "slow ok" {
		t.Fatalf("in-flight request: %+v, want 200 \"slow ok\"", res)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			var all []string
			for l := range logs {
				all = append(all, l)
			}
			t.Fatalf("exit: %v\n%s", err, strings.Join(all, "\n"))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit after SIGTERM")
	}
	// New connections are refused once it stopped.
	if _, err := net.DialTimeout("tcp", pub, time.Second); err == nil {
		t.Error("listener still accepts after exit")
	}
}

// TestSIGTERMDrainTimeoutExits1: a request still in flight when -drain runs out is cut, and
// the process says so and exits 1, not 0: a stop that dropped a request is not a clean one.
func TestSIGTERMDrainTimeoutExits1(t *testing.T) {
	cmd, logs, _ := gatewayWithHeldRequest(t, "300ms")
	sigtermExits1(t, cmd, logs, "did not finish")
}

// TestSIGHUPWhileStarting: a SIGHUP that comes while the gateway is still starting (its
// filters compiling, the wasm cache empty) does not end the process, whose default action
// for it that is: the gateway comes up and serves.
func TestSIGHUPWhileStarting(t *testing.T) {
	bin := hookwallBinary(t)
	guest, err := filepath.Abs("../../examples/filters/eventallow/eventallow.wasm")
	if err != nil {
		t.Fatal(err)
	}
	pub, adm := freePort(t), freePort(t)
	dir := ghGateway{Listen: pub, Admin: adm, Upstream: "http://127.0.0.1:9",
		RouteKeys: fmt.Sprintf("filters = [\"events\"]\n\n[[filter]]\nname = \"events\"\nmodule = %q\nconfig = '{\"allow\": [\"push\"]}'\n", guest)}.tree(t)
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "gateway.toml"))
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "HW_TEST_SECRET=s3cret", "XDG_CACHE_HOME="+t.TempDir())
	logs := startProcess(t, cmd)
	exited := make(chan error, 1)
	go func() {
		for range logs { // drained, so that Wait may close the pipe
		}
		exited <- cmd.Wait()
	}()
	time.Sleep(200 * time.Millisecond) // in main by now; compiling the filter takes longer
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			t.Fatalf("the gateway ended on a SIGHUP while starting: %v", err)
		default:
		}
		if r, err := http.Get("http://" + adm + "/readyz"); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway never became ready")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startProcess starts cmd, kills it when the test ends, and returns its stderr lines.
func startProcess(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	logs := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs <- sc.Text()
		}
		close(logs)
	}()
	return logs
}

// waitLine reads the process's stderr lines until one contains want, for at most d; false
// when none did before d passed or the process's stderr closed.
func waitLine(logs <-chan string, want string, d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-logs:
			if !ok {
				return false
			}
			if strings.Contains(l, want) {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// keepLogs reads logs (a process's stderr lines) to their end, so the process never blocks
// on a full pipe, and prints them under name if the test failed.
func keepLogs(t *testing.T, name string, logs <-chan string) {
	t.Helper()
	var (
		mu    sync.Mutex
		lines []string
	)
	go func() {
		for l := range logs {
			mu.Lock()
			lines = append(lines, l)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		t.Logf("%s logged %d lines:\n%s", name, len(lines), strings.Join(lines, "\n"))
	})
}

// startHookwall runs the real binary on dir/gateway.toml, in dir, with env (KEY=value) added
// to its environment, and waits until its admin listener adm is ready. It is killed when the
// test ends; the channel carries its stderr lines.
func startHookwall(t *testing.T, bin, dir, adm string, env ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "gateway.toml"))
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), env...)
	logs := startProcess(t, cmd)
	waitReady(t, "http://"+adm+"/readyz")
	return cmd, logs
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get(url); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

// TestCheckQuotesTheFilter: a filter that refuses its config fails check with its own words.
func TestCheckQuotesTheFilter(t *testing.T) {
	guard, err := filepath.Abs("../../examples/filters/jsonguard/jsonguard.wasm")
	if err != nil {
		t.Fatal(err)
	}
	dir := writeTree(t, map[string]string{
		"gateway.toml":         fmt.Sprintf("[[filter]]\nname = \"guard\"\nmodule = %q\nconfig = '{\"max_depth\": 0}'\n", guard) + checkConfig,
		"policies/routes.rego": "package routes.a\nallow := true\n",
	})
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"check", "-c", filepath.Join(dir, "gateway.toml")}, io.Discard, &errb); code != 1 {
		t.Fatalf("exit %d, want 1:\n%s", code, errb.String())
	}
	if !strings.Contains(errb.String(), `filter[1] "guard"`) || !strings.Contains(errb.String(), "jsonguard: config: limits out of range") {
		t.Fatalf("check does not quote the filter's message:\n%s", errb.String())
	}
}

// TestCheckReportsCrossCheck: check says what the cross-check does under each of its keys,
// the ceiling off included, from a real config and policy.
func TestCheckReportsCrossCheck(t *testing.T) {
	for _, tc := range []struct{ policies, want string }{
		{"cross_check_max = 0\non_divergence = \"log\"\n",
			"  cross-check: 1% of compiled decisions, no ceiling (cross_check_max = 0), evaluated again with topdown; a divergence is logged and counted\n"},
		{"cross_check = 0.25\ncross_check_max = 7\n",
			"  cross-check: 25% of compiled decisions, at most 7 a second, evaluated again with topdown; a divergence moves the route to opa until the next reload\n"},
		{"cross_check = 0\n", "  cross-check: off (cross_check = 0)\n"},
	} {
		dir := writeTree(t, map[string]string{
			"gateway.toml":         "[policies]\n" + tc.policies + checkConfig,
			"policies/routes.rego": "package routes.a\nallow := true\n",
		})
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"check", "-c", filepath.Join(dir, "gateway.toml")}, &out, &errb); code != 0 {
			t.Fatalf("[policies] %q: exit %d\n%s", tc.policies, code, errb.String())
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("[policies] %q: check does not say %q:\n%s", tc.policies, tc.want, out.String())
		}
	}
}
