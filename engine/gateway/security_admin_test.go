package gateway

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// adminConfig is a gateway with a tokenless loopback admin listener (the default) and one
// route whose upstream URL is {{UPSTREAM}}; {{ADMIN}} adds [admin] keys.
const adminConfig = `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"
{{ADMIN}}

[log]
decisions = "off"

[[route]]
name = "open"
path = "/hook"
upstream = "{{UPSTREAM}}"
policy = "routes.open"
`

func startAdminEnv(t *testing.T, upstreamURL, adminKeys string) *env {
	t.Helper()
	cfg := strings.NewReplacer("{{UPSTREAM}}", upstreamURL, "{{ADMIN}}", adminKeys).Replace(adminConfig)
	return startEnv(t, cfg, map[string]string{"policies/open.rego": "package routes.open\n\nallow := true\n"}, Options{})
}

// adminDo sends one request to the admin listener with the given Host header and headers.
func adminDo(t *testing.T, e *env, method, path, host string, headers map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.admin+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	r, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return r.StatusCode, string(b)
}

// TestAdminRejectsForeignHost: a DNS-rebinding page (its name re-pointed at 127.0.0.1) reads
// the tokenless admin listener as same-origin; what tells it apart is the Host header. Every
// admin route answers 421 to a Host that is not loopback with the listener's port, and
// nothing of the gateway's state.
func TestAdminRejectsForeignHost(t *testing.T) {
	e := startAdminEnv(t, startUpstream(t).URL(), "")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(e.admin, "http://"))
	paths := []string{"/healthz", "/readyz", "/-/status", "/-/recent", "/metrics", "/", "/debug/pprof/"}
	for _, host := range []string{"rebind.attacker.example:" + port, "rebind.attacker.example", "127.0.0.1:1", "localhost", "10.0.0.1:" + port, "localhost.attacker.example:" + port} {
		for _, p := range paths {
			st, body := adminDo(t, e, "GET", p, host, nil, "")
			if st != http.StatusMisdirectedRequest || strings.Contains(body, "open") || strings.Contains(body, "hookwall_") {
				t.Errorf("GET %s with Host %q: %d %.80q, want 421 and nothing of the gateway", p, host, st, body)
			}
		}
		st, _ := adminDo(t, e, "POST", "/-/reload", host, map[string]string{AdminHeader: "1"}, "")
		if st != http.StatusMisdirectedRequest {
			t.Errorf("POST /-/reload with Host %q: %d, want 421", host, st)
		}
	}
	if n := e.g.Status().Reloads; n != 0 {
		t.Errorf("%d reloads ran for foreign hosts", n)
	}
	for _, host := range []string{"127.0.0.1:" + port, "localhost:" + port, "LocalHost:" + port, "[::1]:" + port, "127.8.9.10:" + port} {
		if st, body := adminDo(t, e, "GET", "/-/status", host, nil, ""); st != 200 || !strings.Contains(body, `"open"`) {
			t.Errorf("GET /-/status with Host %q: %d, want 200 with the routes", host, st)
		}
	}
}

// TestAdminPostNeedsPreflightedRequest: a web page can send a cross-site POST that the
// browser does not ask about first (a form, or fetch with a text/plain body). Every admin
// POST must carry what only a preflighted request can; the admin never answers a preflight,
// so no page can send it.
func TestAdminPostNeedsPreflightedRequest(t *testing.T) {
	e := startAdminEnv(t, startUpstream(t).URL(), "")
	simple := []map[string]string{
		nil,
		{"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://attacker.example"},
		{"Content-Type": "application/x-www-form-urlencoded", "Origin": "null"},
		{"Content-Type": "multipart/form-data; boundary=x"},
		{"Content-Type": "text/plain; a=application/json"},
	}
	for _, h := range simple {
		if st, body := adminDo(t, e, "POST", "/-/reload", "", h, "{}"); st != http.StatusForbidden || !strings.Contains(body, AdminHeader) {
			t.Errorf("POST /-/reload with %v: %d %q, want 403 naming %s", h, st, body, AdminHeader)
		}
	}
	if n := e.g.Status().Reloads; n != 0 {
		t.Fatalf("%d reloads ran from simple requests", n)
	}
	for i, h := range []map[string]string{{AdminHeader: "1"}, {"Content-Type": "application/json"}, {"Content-Type": "application/json; charset=utf-8"}} {
		st, body := adminDo(t, e, "POST", "/-/reload", "", h, "")
		var ans map[string]string
		_ = json.Unmarshal([]byte(body), &ans)
		if st != 200 || ans["result"] != "ok" {
			t.Fatalf("POST /-/reload with %v: %d %q, want 200", h, st, body)
		}
		if n := e.g.Status().Reloads; n != uint64(i+1) {
			t.Fatalf("reloads %d after %d accepted POSTs", n, i+1)
		}
	}
}

// TestAdminPprofNeedsToken: the profiler is served only with [admin] token set, and then
// only with the token.
func TestAdminPprofNeedsToken(t *testing.T) {
	up := startUpstream(t).URL()
	open := startAdminEnv(t, up, "")
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline", "/debug/pprof/goroutine?debug=1"} {
		if st, body := adminDo(t, open, "GET", p, "", nil, ""); st != http.StatusForbidden || strings.Contains(body, "goroutine") {
			t.Errorf("tokenless GET %s: %d %.80q, want 403", p, st, body)
		}
	}
	tok := startAdminEnv(t, up, `token = "pprof-test-token"`)
	if st, _ := adminDo(t, tok, "GET", "/debug/pprof/cmdline", "", nil, ""); st != http.StatusUnauthorized {
		t.Errorf("GET /debug/pprof/cmdline without the token: %d, want 401", st)
	}
	if st, body := adminDo(t, tok, "GET", "/debug/pprof/goroutine?debug=1", "", map[string]string{"Authorization": "Bearer pprof-test-token"}, ""); st != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/goroutine with the token: %d, want 200 with a profile", st)
	}
}

// TestAdminTokenScheme: the Bearer scheme is matched in any case (RFC 9110 section 11.1),
// the token exactly: a prefix, an extension, another scheme or an empty token is 401.
func TestAdminTokenScheme(t *testing.T) {
	e := startAdminEnv(t, startUpstream(t).URL(), `token = "scheme-test-token"`)
	for auth, want := range map[string]int{
		"Bearer scheme-test-token":  200,
		"bearer scheme-test-token":  200,
		"BEARER  scheme-test-token": 200,
		"Bearer scheme-test-toke":   401,
		"Bearer scheme-test-tokenX": 401,
		"Basic scheme-test-token":   401,
		"scheme-test-token":         401,
		"Bearer ":                   401,
		"Bearerscheme-test-token":   401,
		"Bearer\tscheme-test-token": 401,
	} {
		if st, _ := adminDo(t, e, "GET", "/-/status", "", map[string]string{"Authorization": auth}, ""); st != want {
			t.Errorf("Authorization %q: %d, want %d", auth, st, want)
		}
	}
}

// TestAdminMasksUpstreamCredentials: an upstream URL carrying a user and password is shown
// with its userinfo masked in the status JSON (which the status page renders), and neither
// the serving config nor a refused reload's error puts the password in the status or the log.
func TestAdminMasksUpstreamCredentials(t *testing.T) {
	up := startUpstream(t)
	const user, pw = "hookuser", "s3cr3t-pw"
	withCreds := strings.Replace(up.URL(), "http://", "http://"+user+":"+pw+"@", 1)
	e := startAdminEnv(t, withCreds, "")
	if r := e.do("POST", "/hook", []byte("{}"), nil); r.Status != 200 {
		t.Fatalf("forward: %d", r.Status)
	}
	_, body := adminDo(t, e, "GET", "/-/status", "", nil, "")
	want := strings.Replace(up.URL(), "http://", "http://xxxxx@", 1)
	if strings.Contains(body, pw) || strings.Contains(body, user) || !strings.Contains(body, `"upstream": "`+want+`"`) {
		t.Fatalf("/-/status shows %q, want the upstream as %q:\n%s", withCreds, want, body)
	}

	// A reload that the config refuses: a bad port, and a missing host, each with the password.
	for _, bad := range []string{"http://" + user + ":" + pw + "@127.0.0.1:port", "http://" + user + ":" + pw + "@"} {
		cfg := strings.NewReplacer("{{UPSTREAM}}", bad, "{{ADMIN}}", "").Replace(adminConfig)
		testutil.ReplaceFile(t, e.path("gateway.toml"), cfg)
		st, ans := e.adminReload()
		if st != http.StatusUnprocessableEntity || !strings.Contains(ans["error"], "upstream") {
			t.Fatalf("reload with upstream %q: %d %v, want 422 naming the key", bad, st, ans)
		}
		for where, text := range map[string]string{"reload answer": ans["error"], "status": e.adminStatus().LastError, "log": e.logBuf.String()} {
			if strings.Contains(text, pw) {
				t.Errorf("the %s shows the upstream password: %s", where, text)
			}
		}
	}
}

// TestAdminRefusesCrossSiteReloadInChromium runs the two browser attacks in a real browser
// against a tokenless loopback admin listener: a page on another origin POSTs to
// /-/reload (a no-cors text/plain fetch, which the browser sends without asking, and one
// with the Hookwall-Admin header, which it must preflight), and a page whose name resolves
// to 127.0.0.1 reads /-/status (DNS rebinding, with Chromium's resolver pointing the name at
// loopback). No reload runs and the status is not read.
func TestAdminRefusesCrossSiteReloadInChromium(t *testing.T) {
	bin := chromium(t)
	e := startAdminEnv(t, startUpstream(t).URL(), "")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(e.admin, "http://"))

	page := `<!doctype html><html><body>waiting<script>
(async () => {
  const admin = "` + e.admin + `", out = [];
  try { await fetch(admin + "/-/reload", {method: "POST", mode: "no-cors", body: "reload"}); out.push("nocors:sent"); }
  catch (err) { out.push("nocors:failed"); }
  try { const r = await fetch(admin + "/-/reload", {method: "POST", headers: {"Hookwall-Admin": "1"}}); out.push("preflighted:" + r.status); }
  catch (err) { out.push("preflighted:blocked"); }
  document.body.textContent = "done " + out.join(" ");
})();
</script></body></html>`
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	attacker := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, page)
	})}
	go attacker.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = attacker.Close() })

	dom := string(runChromium(t, bin, "http://"+ln.Addr().String()+"/", "--dump-dom"))
	if !strings.Contains(dom, "done nocors:sent preflighted:blocked") {
		t.Fatalf("the attack page did not run as expected:\n%s", dom)
	}
	if n := e.g.Status().Reloads; n != 0 {
		t.Errorf("a page on another origin reloaded the gateway %d times", n)
	}

	dom = string(runChromium(t, bin, "http://rebind.attacker.test:"+port+"/-/status",
		"--host-resolver-rules=MAP rebind.attacker.test 127.0.0.1", "--dump-dom"))
	if strings.Contains(dom, `"routes"`) || !strings.Contains(dom, "loopback Host") {
		t.Errorf("a rebound name read the admin listener:\n%s", dom)
	}
}

// TestTokenlessAdminMustBeBoundToLoopback: the config takes "localhost" as loopback by its
// text; a host whose resolver maps it elsewhere would bind the tokenless admin listener
// there. The address bound is checked.
func TestTokenlessAdminMustBeBoundToLoopback(t *testing.T) {
	for _, c := range []struct {
		ip    string
		token string
		ok    bool
	}{{"127.0.0.1", "", true}, {"::1", "", true}, {"192.0.2.10", "", false}, {"2001:db8::1", "", false}, {"192.0.2.10", "t", true}} {
		err := tokenlessAdminIsLoopback("localhost:9090", &net.TCPAddr{IP: net.ParseIP(c.ip), Port: 9090}, c.token)
		if (err == nil) != c.ok {
			t.Errorf("bound to %s, token %q: %v, want ok %v", c.ip, c.token, err, c.ok)
		}
	}
}
