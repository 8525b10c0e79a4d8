package gateway

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// secRoutePolicies: the "github" routes deny everything, "app" denies the admin area by
// input.request.path, and the others allow. Every allowing policy tells the upstream which
// route judged the request and which path and URI the policy saw.
var secRoutePolicies = map[string]string{
	"policies/deny.rego": `package routes.deny

default allow := false
`,
	"policies/echo.rego": `package routes.echo

allow := true

upstream_headers := {"X-Route": input.route.name, "X-Policy-Path": input.request.path, "X-Policy-Uri": input.request.uri, "X-Tenant": "acme"}
`,
	"policies/app.rego": `package routes.app

allow := true

deny contains "admin area" if startswith(input.request.path, "/app/admin")

upstream_headers := {"X-Route": input.route.name, "X-Policy-Path": input.request.path, "X-Policy-Uri": input.request.uri}
`,
}

// secRouteConfig: the catch-all route's upstream has a base path ("/inner") that a request
// must never climb out of.
const secRouteConfig = `
[server]
listen = "127.0.0.1:0"
{{EXTRA}}

[admin]
listen = "127.0.0.1:0"

[log]
decisions = "{{DIR}}/decisions.log"

[[route]]
name = "github"
prefix = "/hooks/github"
upstream = "{{UPSTREAM}}"
policy = "routes.deny"

[[route]]
name = "public"
prefix = "/public"
upstream = "{{UPSTREAM}}"
policy = "routes.echo"

[[route]]
name = "app"
prefix = "/app"
upstream = "{{UPSTREAM}}"
policy = "routes.app"

[[route]]
name = "root"
prefix = "/"
upstream = "{{UPSTREAM}}/inner"
policy = "routes.echo"
`

func secStartRoute(t *testing.T, extra string) (*env, *upstream) {
	t.Helper()
	up := startUpstream(t)
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{EXTRA}}", extra).Replace(secRouteConfig)
	return startEnv(t, cfg, secRoutePolicies, Options{}), up
}

// secRawExchange sends one request with target and extra header lines over a raw socket
// (net/http would clean the target) and returns the answer's status and header.
func secRawExchange(t *testing.T, e *env, target string, lines ...string) (int, http.Header) {
	t.Helper()
	raw := "POST " + target + " HTTP/1.1\r\nHost: gw.example\r\n"
	for _, l := range lines {
		raw += l + "\r\n"
	}
	status, h, _ := secRawAnswer(t, e, raw+"Content-Length: 2\r\nConnection: close\r\n\r\n{}")
	return status, h
}

// routeCase is one path attack: the answer and, when forwarded, the route that judged it and
// the target the upstream got, under each path_normalization mode.
type routeCase struct {
	name, target string
	reject       routeWant
	canonical    routeWant // forward_canonical
}

type routeWant struct {
	status int
	route  string // the route that judged a forwarded request
	uri    string // what the upstream received
}

func routeCases() []routeCase {
	bad := routeWant{status: 400}
	return []routeCase{
		{"encoded slashes climb to another route", "/hooks/github/..%2f..%2fpublic/x", bad, routeWant{status: 403}},
		{"encoded dot segments climb to another route", "/hooks/github/%2e%2e/%2e%2e/public/x", bad, routeWant{200, "public", "/public/x"}},
		{"dot-dot hides the admin area", "/app/x/../admin", bad, routeWant{status: 403}},
		{"encoded letter hides the admin area", "/app/%61dmin", routeWant{status: 403}, routeWant{status: 403}},
		{"double slash hides the admin area", "/app//admin", routeWant{status: 403}, routeWant{status: 403}},
		{"dot segment hides the admin area", "/app/./admin", bad, routeWant{status: 403}},
		{"trailing dot segment", "/app/admin/.", bad, routeWant{status: 403}},
		{"trailing dot in a name", "/app/admin.", routeWant{status: 403}, routeWant{status: 403}},
		{"climbs out of the upstream base path", "/../secret", bad, bad},
		{"climbs out deeper", "/x/../../secret", bad, bad},
		{"dot-dot inside the root", "/x/../secret", bad, routeWant{200, "root", "/inner/secret"}},
		{"mixed-case encoded dots", "/app/%2E%2e/inner/x", bad, routeWant{200, "root", "/inner/inner/x"}},
		{"double encoding", "/app/%252e%252e/admin", bad, routeWant{200, "app", "/app/%252e%252e/admin"}},
		// The escape under "%25" spelled with escapes of its own: "%252F" once decoded.
		{"double encoding in escapes", "/app/x%25%32%46..%25%32%46admin", bad, routeWant{200, "app", "/app/x%252F..%252Fadmin"}},
		{"raw backslashes", "/app/x\\..\\admin", bad, routeWant{200, "app", "/app/x%5C..%5Cadmin"}},
		{"encoded backslashes", "/app/x%5c..%5cadmin", bad, routeWant{200, "app", "/app/x%5C..%5Cadmin"}},
		{"overlong UTF-8 dots", "/app/%c0%ae%c0%ae/admin", bad, routeWant{200, "app", "/app/%C0%AE%C0%AE/admin"}},
		{"encoded NUL", "/app/%00/admin", bad, bad},
		{"encoded CRLF", "/public/%0d%0aX-Injected:%201", bad, bad},
		{"path parameters on a dot segment", "/public/..;/app/admin", bad, bad},
		// A servlet container strips ";x=1" and serves /app/admin; forwarded canonical, the
		// ";" is encoded, so no server reads a parameter the policy did not judge.
		{"path parameters hide the admin area", "/app/admin;x=1", bad, routeWant{status: 403}},
		{"path parameters inside a segment", "/public/a;b/c", bad, routeWant{200, "public", "/public/a%3Bb/c"}},
		// fasthttp (and so input.request.query) splits the query on "&" alone; Rack before 3,
		// Python before 3.9.2 and Go before 1.17 on ";" too: admin=true would be a pair the
		// policy never saw.
		{"a separator the policy does not split on", "/public/x?a=1;admin=true&b=2", bad, routeWant{200, "public", "/public/x?a=1%3Badmin=true&b=2"}},
		{"fragment", "/public/x#frag", bad, bad},
		{"malformed escape", "/public/%zz", bad, bad},
		{"query is not the path and is forwarded as received", "/public/x?q=%2e%2e/../a&b=%2F", routeWant{200, "public", "/public/x?q=%2e%2e/../a&b=%2F"}, routeWant{200, "public", "/public/x?q=%2e%2e/../a&b=%2F"}},
		{"normalised query kept", "/public//%78?a=1", routeWant{200, "public", "/public/x?a=1"}, routeWant{200, "public", "/public/x?a=1"}},
		{"canonical path", "/public/caf%C3%A9", routeWant{200, "public", "/public/caf%C3%A9"}, routeWant{200, "public", "/public/caf%C3%A9"}},
	}
}

// TestSecurityRoutePathAttacks sends every path attack over a raw socket to the real gateway,
// under both path_normalization modes, with a recording upstream. A refused request reaches
// nothing; a forwarded one reaches the upstream at the path the route matched, the policy
// saw (input.request.path) and the decision log recorded, the raw target being
// input.request.uri.
func TestSecurityRoutePathAttacks(t *testing.T) {
	for _, mode := range []string{"reject", "forward_canonical"} {
		t.Run(mode, func(t *testing.T) {
			extra := ""
			if mode != "reject" {
				extra = `path_normalization = "` + mode + `"`
			}
			e, up := secStartRoute(t, extra)
			logPath := e.dir + "/decisions.log"
			for i, c := range routeCases() {
				want := c.reject
				if mode != "reject" {
					want = c.canonical
				}
				before := len(up.requests())
				status, _ := secRawExchange(t, e, c.target)
				recs := awaitDecisionRecords(t, logPath, i+1)
				rec := recs[len(recs)-1]
				logged, _ := rec["request"].(map[string]any)["path"].(string)
				if status != want.status {
					t.Errorf("%s %q: status %d, want %d", c.name, c.target, status, want.status)
					continue
				}
				got := up.requests()[before:]
				if want.status != 200 {
					if len(got) != 0 {
						t.Errorf("%s %q: answered %d, yet the upstream got %s", c.name, c.target, status, got[0].URI)
					}
					continue
				}
				if len(got) != 1 {
					t.Fatalf("%s %q: the upstream got %d requests", c.name, c.target, len(got))
				}
				r := got[0]
				seen := r.Header.Get("X-Policy-Path")
				base := ""
				if want.route == "root" {
					base = "/inner"
				}
				upPath, _, _ := strings.Cut(r.URI, "?")
				if r.URI != want.uri || r.Header.Get("X-Route") != want.route || rec["route"] != want.route {
					t.Errorf("%s %q: upstream got %q from route %q (log: %v), want %q from %q", c.name, c.target, r.URI, r.Header.Get("X-Route"), rec["route"], want.uri, want.route)
				}
				if upPath != base+seen || logged != seen {
					t.Errorf("%s %q: upstream path %q, policy path %q, logged path %q: want one path", c.name, c.target, upPath, seen, logged)
				}
				if uri := r.Header.Get("X-Policy-Uri"); uri != c.target {
					t.Errorf("%s: input.request.uri %q, want the raw target %q", c.name, uri, c.target)
				}
			}
		})
	}
}

// TestSecurityRouteHeadersReplaceClientCopies: a header the policy (upstream_headers) or the
// gateway (X-Request-Id, X-Forwarded-*) sets replaces every copy the client sent, and a
// client's Connection header cannot strip it.
func TestSecurityRouteHeadersReplaceClientCopies(t *testing.T) {
	e, up := secStartRoute(t, "")
	hex32 := regexp.MustCompile(`^[0-9a-f]{32}$`)
	check := func(t *testing.T, lines ...string) {
		t.Helper()
		before := len(up.requests())
		status, h := secRawExchange(t, e, "/public/x", lines...)
		if status != 200 {
			t.Fatalf("status %d", status)
		}
		got := up.requests()[before:]
		if len(got) != 1 {
			t.Fatalf("upstream got %d requests", len(got))
		}
		hdr := got[0].Header
		for name, want := range map[string]string{
			"X-Tenant": "acme", "X-Request-Id": h.Get("X-Request-Id"), "X-Forwarded-Proto": "http",
			"X-Forwarded-Host": "gw.example", "X-Forwarded-For": "127.0.0.1", "X-Route": "public",
		} {
			if v := hdr.Values(name); len(v) != 1 || v[0] != want {
				t.Errorf("upstream %s = %q, want exactly %q", name, v, want)
			}
		}
		if !hex32.MatchString(h.Get("X-Request-Id")) {
			t.Errorf("X-Request-Id %q is not the gateway's", h.Get("X-Request-Id"))
		}
	}
	t.Run("client copies", func(t *testing.T) {
		check(t, "X-Tenant: evil", "x-tenant: evil2", "X-Request-Id: client-chosen", "X-Request-Id: client-chosen-2",
			"X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example", "X-Forwarded-Host: evil2.example", "X-Route: github")
	})
	t.Run("Connection names them", func(t *testing.T) {
		check(t, "Connection: X-Tenant, X-Request-Id, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-For, X-Route")
	})
}

// TestSecurityRouteClientHeadersStripped: headers that tell a backend another client address,
// URL or method are stripped unless forward_client_headers names them, and the client's
// X-Forwarded-For list is kept only from a trusted proxy.
func TestSecurityRouteClientHeadersStripped(t *testing.T) {
	spoof := []string{
		"X-HTTP-Method-Override: DELETE", "X-Original-URL: /admin", "X-Rewrite-URL: /admin", "X-Real-IP: 203.0.113.9",
		"Forwarded: for=203.0.113.9;proto=https", "X-Forwarded-Port: 443", "X-Forwarded-Prefix: /admin",
		"True-Client-IP: 203.0.113.9", "X-Forwarded-For: 203.0.113.9",
		// What a TLS-terminating proxy tells its upstream about the client's certificate.
		`X-Forwarded-Client-Cert: Hash=00;Subject="CN=partner-b"`, "X-SSL-Client-S-DN: CN=partner-b",
		"Client-Cert: :MIIB:", "X-Forwarded-Tls-Client-Cert-Info: Subject%3D%22CN%3Dpartner-b%22", "X-ARR-ClientCert: MIIB",
	}
	names := []string{"X-Http-Method-Override", "X-Original-Url", "X-Rewrite-Url", "X-Real-Ip", "Forwarded", "X-Forwarded-Port", "X-Forwarded-Prefix", "True-Client-Ip",
		"X-Forwarded-Client-Cert", "X-Ssl-Client-S-Dn", "Client-Cert", "X-Forwarded-Tls-Client-Cert-Info", "X-Arr-Clientcert"}
	send := func(t *testing.T, e *env, up *upstream) http.Header {
		t.Helper()
		before := len(up.requests())
		if status, _ := secRawExchange(t, e, "/public/x", spoof...); status != 200 {
			t.Fatalf("status %d", status)
		}
		return up.requests()[before].Header
	}

	t.Run("default", func(t *testing.T) {
		e, up := secStartRoute(t, "")
		h := send(t, e, up)
		for _, n := range names {
			if v := h.Values(n); len(v) != 0 {
				t.Errorf("upstream got %s: %q", n, v)
			}
		}
		if v := h.Values("X-Forwarded-For"); len(v) != 1 || v[0] != "127.0.0.1" {
			t.Errorf("X-Forwarded-For %q from an untrusted peer, want only the peer", v)
		}
	})
	t.Run("opted in, trusted peer", func(t *testing.T) {
		e, up := secStartRoute(t, `forward_client_headers = ["X-Real-IP", "forwarded"]`+"\n"+`trusted_proxies = ["127.0.0.1"]`)
		h := send(t, e, up)
		for _, n := range names {
			kept := n == "X-Real-Ip" || n == "Forwarded"
			if v := h.Values(n); (len(v) == 1) != kept {
				t.Errorf("upstream %s = %q, kept %v", n, v, kept)
			}
		}
		if v := h.Values("X-Forwarded-For"); len(v) != 1 || v[0] != "203.0.113.9, 127.0.0.1" {
			t.Errorf("X-Forwarded-For %q from a trusted proxy, want its list and the peer", v)
		}
	})
	// The set stripped is resolved once per configuration, and forward_client_headers needs
	// a restart: a reload that changes it is refused whole, and the live set stays.
	t.Run("a reload cannot opt in", func(t *testing.T) {
		e, up := secStartRoute(t, "")
		cfg, err := os.ReadFile(e.path("gateway.toml"))
		if err != nil {
			t.Fatal(err)
		}
		cfg = bytes.Replace(cfg, []byte("[server]\n"), []byte("[server]\nforward_client_headers = [\"X-Real-IP\"]\n"), 1)
		if err := os.WriteFile(e.path("gateway.toml"), cfg, 0o600); err != nil {
			t.Fatal(err)
		}
		if st, out := e.adminReload(); st != 422 || !strings.Contains(out["error"], "server.forward_client_headers changed") {
			t.Fatalf("reload: %d %v, want 422 naming the key", st, out)
		}
		h := send(t, e, up)
		for _, n := range names {
			if v := h.Values(n); len(v) != 0 {
				t.Errorf("after the refused reload, upstream got %s: %q", n, v)
			}
		}
	})
}

// TestSecurityRouteFiltersSeeTheCanonicalPath: a filter reads the target with the path the
// route matched and the policy judged, and what it sets is forwarded canonical. The filter
// is http-wasm-host-go's reference router (from the module cache): it strips a "/host"
// prefix from the URI (and answers any other request itself).
func TestSecurityRouteFiltersSeeTheCanonicalPath(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/http-wasm/http-wasm-host-go").Output()
	if err != nil {
		t.Fatalf("locate http-wasm-host-go: %v", err)
	}
	router := filepath.Join(strings.TrimSpace(string(out)), "examples", "router.wasm")
	up := startUpstream(t)
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{EXTRA}}", "").Replace(secRouteConfig)
	cfg = strings.Replace(cfg, "[[route]]", "[[filter]]\nname = \"router\"\nmodule = \""+router+"\"\n\n[[route]]", 1)
	cfg = strings.Replace(cfg, "policy = \"routes.echo\"\n", "policy = \"routes.echo\"\nfilters = [\"router\"]\n", 2)
	e := startEnv(t, cfg, secRoutePolicies, Options{})
	for _, c := range []struct{ target, uri, policyPath string }{
		{"/host//x/%61?q=%2e%2e", "/inner/x/a?q=%2e%2e", "/host/x/a"},
		{"/host/%7Ex", "/inner/~x", "/host/~x"},
	} {
		before := len(up.requests())
		if status, _ := secRawExchange(t, e, c.target); status != 200 {
			t.Fatalf("%q: status %d", c.target, status)
		}
		got := up.requests()[before:]
		if len(got) != 1 || got[0].URI != c.uri || got[0].Header.Get("X-Policy-Path") != c.policyPath {
			t.Fatalf("%q: upstream got %+v, want %q with policy path %q", c.target, got, c.uri, c.policyPath)
		}
	}
}
