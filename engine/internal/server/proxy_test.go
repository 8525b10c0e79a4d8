package server

import (
	"bufio"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/internal/httpsyntax"
	"github.com/hookwall/hookwall/engine/internal/input"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// randomCase returns s in lower, upper or its own case, at random.
func randomCase(r *rand.Rand, s string) string {
	switch r.IntN(3) {
	case 0:
		return strings.ToLower(s)
	case 1:
		return strings.ToUpper(s)
	}
	return s
}

// TestConnectionCannotStripEndToEndFields: a client that lists Host, Content-Length or
// Content-Type in Connection does not get them stripped from what is forwarded: the policy
// judged the request with them (and X-Forwarded-Host is the Host). Other listed names go.
func TestConnectionCannotStripEndToEndFields(t *testing.T) {
	raw := "POST /x HTTP/1.1\r\nHost: hooks.example\r\nContent-Type: application/json\r\nX-Listed: 1\r\n" +
		"Connection: keep-alive, Host, content-type, Content-Length, X-Listed\r\nContent-Length: 2\r\n\r\n{}"
	var req fasthttp.Request
	if err := req.ReadLimitBody(bufioReader(raw), 1<<20); err != nil {
		t.Fatal(err)
	}
	hops, _, _, _ := forwardedNames(req.Header.All(), 0)
	stripHop(&req.Header, hops)
	h := &req.Header
	if string(h.Host()) != "hooks.example" || string(h.ContentType()) != "application/json" || h.ContentLength() != 2 {
		t.Errorf("Host %q, Content-Type %q, Content-Length %d: want them as sent\n%s", h.Host(), h.ContentType(), h.ContentLength(), h.String())
	}
	if len(h.Peek("X-Listed")) != 0 || len(h.Peek("Connection")) != 0 {
		t.Errorf("X-Listed or Connection forwarded:\n%s", h.String())
	}
}

// TestStripHopShortcut: stripping with the one-pass shortcut leaves exactly the headers the
// full strip leaves, for requests and responses with hop-by-hop headers in any case, names
// listed in Connection, chunked bodies and none of these.
func TestStripHopShortcut(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := append([]string{"X-A", "X-Listed", "Content-Type", "X-Hub-Signature-256", "Tee", "Upgrades"}, hopHeaders[:]...)
	casing := func(s string) string { return randomCase(r, s) }
	stripped, kept := 0, 0
	for i := range 3000 {
		var raw strings.Builder
		var hdr strings.Builder
		for j, n := 0, r.IntN(6); j < n; j++ {
			name := names[r.IntN(len(names))]
			switch strings.ToLower(name) {
			case "transfer-encoding", "content-length":
				continue // framing is chosen below
			case "connection":
				hdr.WriteString(casing(name) + ": keep-alive, " + casing("X-Listed") + "\r\n")
				continue
			}
			hdr.WriteString(casing(name) + ": v" + string(rune('0'+j)) + "\r\n")
		}
		body := "0123456789"
		framing := "Content-Length: 10\r\n\r\n" + body
		if i%5 == 0 {
			framing = "Transfer-Encoding: chunked\r\n\r\na\r\n" + body + "\r\n0\r\n\r\n"
		}
		raw.WriteString("POST /x HTTP/1.1\r\nHost: gw\r\n" + hdr.String() + framing)

		var a, b fasthttp.Request
		if err := a.ReadLimitBody(bufioReader(raw.String()), 1<<20); err != nil {
			t.Fatalf("%v\n%s", err, raw.String())
		}
		_ = b.ReadLimitBody(bufioReader(raw.String()), 1<<20)
		before := a.Header.String()
		hops, _, _, _ := forwardedNames(a.Header.All(), 0)
		stripHop(&a.Header, hops)
		stripHopAll(&b.Header)
		if a.Header.String() != b.Header.String() {
			t.Fatalf("request:\n%s\nshortcut left:\n%s\nfull strip left:\n%s", raw.String(), a.Header.String(), b.Header.String())
		}
		if before == a.Header.String() {
			kept++
		} else {
			stripped++
		}

		resp := "HTTP/1.1 200 OK\r\n" + hdr.String() + framing
		var ra, rb fasthttp.Response
		if err := ra.Read(bufioReader(resp)); err != nil {
			t.Fatalf("%v\n%s", err, resp)
		}
		_ = rb.Read(bufioReader(resp))
		stripHopResp(&ra.Header)
		stripHopRespAll(&rb.Header)
		if ra.Header.String() != rb.Header.String() {
			t.Fatalf("response:\n%s\nshortcut left:\n%s\nfull strip left:\n%s", resp, ra.Header.String(), rb.Header.String())
		}
	}
	if stripped == 0 || kept == 0 {
		t.Fatalf("stripped %d, kept %d: the cases must cover both", stripped, kept)
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// TestForwardedTargetAsReceived: the upstream receives the request-target byte for byte as
// the gateway made it (the route's base path, the canonical path, the query as received),
// whether or not the gateway set it again, through policies that do and do not read the
// request (the capture parses the query arguments, from which fasthttp's client would
// otherwise rebuild the query).
func TestForwardedTargetAsReceived(t *testing.T) {
	targets := make(chan string, 16)
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					length := 0
					for {
						h, err := br.ReadString('\n')
						if err != nil {
							return
						}
						if h == "\r\n" {
							break
						}
						if name, v, ok := strings.Cut(h, ":"); ok && strings.EqualFold(name, "Content-Length") {
							length, _ = strconv.Atoi(strings.TrimSpace(v))
						}
					}
					if _, err := io.CopyN(io.Discard, br, int64(length)); err != nil {
						return
					}
					targets <- strings.Fields(line)[1]
					if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
						return
					}
				}
			}()
		}
	}()
	bench, _ := filepath.Abs("../../../examples/bench")
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "github.secret"), "bench-secret")
	addr := up.Addr().String()
	cfgText := `
[policies]
dir = "` + filepath.Join(bench, "policies") + `"
[secrets]
github = {file = "github.secret"}
[[route]]
name = "none"
prefix = "/none/"
upstream = "http://` + addr + `"
policy = "bench.none"
[[route]]
name = "based"
prefix = "/based/"
upstream = "http://` + addr + `/base"
policy = "bench.none"
[[route]]
name = "verify"
prefix = "/verify/"
upstream = "http://` + addr + `"
policy = "bench.verify"
`
	_, gw := startServer(t, filepath.Join(dir, "gateway.toml"), cfgText, nil)
	conn, err := net.Dial("tcp", gw)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	body := []byte(`{"zen":"ok"}`)
	sig := signGitHub("bench-secret", body)
	for _, c := range []struct{ target, want string }{
		{"/none/a", "/none/a"},
		{"/none/a/b.json", "/none/a/b.json"},
		{"/none/A-Z_0.9~", "/none/A-Z_0.9~"},
		{"/none/a?x=1&y=%7E&x=2", "/none/a?x=1&y=%7E&x=2"},
		{"/none/a?", "/none/a"}, // fasthttp's client writes an empty query as none
		{"/based/a", "/base/based/a"},
		{"/based/a?q", "/base/based/a?q"},
		{"/verify/a", "/verify/a"},
		{"/verify/a?b=%20&a=1", "/verify/a?b=%20&a=1"},
		{"/verify/a?", "/verify/a"},
	} {
		raw := "POST " + c.target + " HTTP/1.1\r\nHost: gw.example\r\nContent-Type: application/json\r\nX-GitHub-Event: push\r\n" +
			"X-Hub-Signature-256: " + sig + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body)
		if _, err := io.WriteString(conn, raw); err != nil {
			t.Fatal(err)
		}
		var resp fasthttp.Response
		if err := resp.Read(br); err != nil {
			t.Fatalf("%s: %v", c.target, err)
		}
		if resp.StatusCode() != 200 {
			t.Fatalf("%s: status %d %s", c.target, resp.StatusCode(), resp.Body())
		}
		select {
		case got := <-targets:
			if got != c.want {
				t.Errorf("%s: upstream got target %q, want %q", c.target, got, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the upstream got nothing", c.target)
		}
	}
}

// TestPrepareStripsInOnePass: the forwarded request's header, after prepare's one pass over
// the names, carries no hop-by-hop header, no name its Connection header listed, no client
// header of [server]'s strip list, the gateway's own four headers once each with the
// gateway's values, and every other field as received, for requests carrying any mix of
// them in any case.
func TestPrepareStripsInOnePass(t *testing.T) {
	const routeCfg = "[[route]]\nname = \"r\"\npath = \"/\"\nupstream = \"http://127.0.0.1:1\"\npolicy = \"p\"\n"
	// The default strips every client header; the second forwards three of them, so the
	// strip marks are tested with bits cleared.
	for i, server := range []string{"", "[server]\nforward_client_headers = [\"X-Real-Ip\", \"forwarded\", \"X-Http-Method\"]\n"} {
		cfg, err := config.Parse("g.toml", []byte(server+routeCfg))
		if err != nil {
			t.Fatal(err)
		}
		if want := len(config.ClientHeaders()) - 3*i; len(cfg.Server.StripHeaders()) != want {
			t.Fatalf("%d client headers stripped, want %d", len(cfg.Server.StripHeaders()), want)
		}
		t.Run(strconv.Itoa(i), func(t *testing.T) { testPrepareStrips(t, cfg.Server.StripHeaders(), cfg.Server.StripMarks()) })
	}
}

func testPrepareStrips(t *testing.T, strip []string, stripMarks uint32) {
	r := rand.New(rand.NewPCG(3, 4))
	others := []string{"X-A", "X-Listed", "X-Hub-Signature-256", "X-Github-Event", "Tee", "Upgrades", "X-Forwarded", "X-Request"}
	var names []string
	names = append(append(append(append(names, others...), hopHeaders[:]...), config.ClientHeaders()...), httpsyntax.GatewayOwned[:]...)
	casing := func(s string) string { return randomCase(r, s) }
	in := func(set []string, name string) bool {
		return slices.ContainsFunc(set, func(s string) bool { return strings.EqualFold(s, name) })
	}
	route := &snapshot.Route{}
	meta := &input.Meta{ID: "0123456789abcdef0123456789abcdef", Scheme: "http"}
	found := map[bool]int{}
	for range 3000 {
		var hdr strings.Builder
		var listed []string // names the Connection header lists
		want := map[string][]string{}
		for j, n := 0, r.IntN(8); j < n; j++ {
			name := names[r.IntN(len(names))]
			switch {
			case strings.EqualFold(name, "Transfer-Encoding"):
				continue // the framing is Content-Length's
			case strings.EqualFold(name, "Connection"):
				l := others[r.IntN(len(others))]
				if r.IntN(2) == 0 {
					l = names[r.IntN(len(names))]
				}
				listed = append(listed, l)
				hdr.WriteString(casing(name) + ": keep-alive, " + casing(l) + "\r\n")
				continue
			}
			v := "v" + strconv.Itoa(j)
			hdr.WriteString(casing(name) + ": " + v + "\r\n")
			if !in(hopHeaders[:], name) && !in(strip, name) && !in(httpsyntax.GatewayOwned[:], name) {
				want[strings.ToLower(name)] = append(want[strings.ToLower(name)], v)
			}
		}
		for _, l := range listed {
			delete(want, strings.ToLower(l))
		}
		raw := "POST /x HTTP/1.1\r\nHost: gw\r\n" + hdr.String() + "Content-Length: 2\r\n\r\nok"
		var req fasthttp.Request
		if err := req.ReadLimitBody(bufioReader(raw), 1<<20); err != nil {
			t.Fatalf("%v\n%s", err, raw)
		}
		// The marks, against a plain reading of the header as received.
		var wantHops uint16
		var wantStrip uint32
		wantOwned := false
		for k := range req.Header.All() {
			for i, hop := range hopHeaders {
				if strings.EqualFold(string(k), hop) {
					wantHops |= 1 << i
				}
			}
			for i, c := range config.ClientHeaders() {
				if strings.EqualFold(string(k), c) && in(strip, c) {
					wantStrip |= 1 << i
				}
			}
			wantOwned = wantOwned || in(httpsyntax.GatewayOwned[:], string(k))
		}
		hops, stripped, anyOwned, _ := forwardedNames(req.Header.All(), stripMarks)
		if hops != wantHops || stripped != wantStrip || anyOwned != wantOwned {
			t.Fatalf("forwardedNames: hops %b, strip %b, owned %v; want %b, %b, %v:\n%s", hops, stripped, anyOwned, wantHops, wantStrip, wantOwned, raw)
		}
		found[stripped != 0 || anyOwned]++
		fw := forwarding{peer: "192.0.2.7", strip: stripMarks, host: []byte("gw")}
		if err := fw.prepare(&req, route, meta); err != nil {
			t.Fatal(err)
		}
		got := map[string][]string{}
		for k, v := range req.Header.All() {
			got[strings.ToLower(string(k))] = append(got[strings.ToLower(string(k))], string(v))
		}
		for k := range got {
			if in(hopHeaders[:], k) || in(strip, k) {
				t.Fatalf("%q forwarded:\n%s\nforwarded header:\n%s", k, raw, req.Header.String())
			}
		}
		for k, v := range map[string]string{"x-forwarded-for": "192.0.2.7", "x-forwarded-host": "gw", "x-forwarded-proto": "http", "x-request-id": meta.ID} {
			if !slices.Equal(got[k], []string{v}) {
				t.Fatalf("%s is %q, want the gateway's %q:\n%s", k, got[k], v, raw)
			}
			delete(got, k)
		}
		for _, k := range []string{"host", "content-length", "user-agent", "content-type"} {
			delete(got, k)
		}
		// Deleting a field may move the later fields of a repeated name (fasthttp's Del):
		// the values are compared as sets.
		for _, m := range []map[string][]string{got, want} {
			for _, v := range m {
				slices.Sort(v)
			}
		}
		if !maps.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("forwarded %v, want %v:\n%s", got, want, raw)
		}
	}
	if found[true] < 1000 || found[false] < 300 {
		t.Fatalf("requests with and without a stripped or owned header: %v", found)
	}
}

// TestEveryConnectionListIsStripped sends, on a raw connection to the real gateway, a
// request with two Connection fields, each naming a header the request carries: the real
// upstream receives neither named header, nor the Connection fields, and the request's other
// headers as sent.
func TestEveryConnectionListIsStripped(t *testing.T) {
	got := make(chan map[string]string, 1)
	up := startUpstreamHandler(t, func(c *fasthttp.RequestCtx) {
		h := map[string]string{}
		for k, v := range c.Request.Header.All() {
			h[string(k)] = string(v)
		}
		got <- h
		c.SetBodyString("ok")
	})
	gw := startOpenRoute(t, "/hook", up)
	conn, err := net.Dial("tcp", gw)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := "POST /hook HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive, X-First\r\nX-First: 1\r\n" +
		"Connection: x-second\r\nX-Second: 2\r\nX-Kept: 3\r\nContent-Length: 2\r\n\r\nok"
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode(), resp.Body())
	}
	h := <-got
	for _, name := range []string{"X-First", "X-Second", "Connection"} {
		if v, ok := h[name]; ok {
			t.Errorf("the upstream received %s: %q (all: %v)", name, v, h)
		}
	}
	if h["X-Kept"] != "3" {
		t.Errorf("X-Kept %q, want 3 (all: %v)", h["X-Kept"], h)
	}
}

// TestPolicyDoesNotSeeWhatConnectionRemoves: a field a Connection field names is removed
// before the upstream, so it is removed before anything runs: a policy that allows on it
// (a signature header, say) does not see it, and the request it would have allowed with
// a field the upstream never gets is refused.
func TestPolicyDoesNotSeeWhatConnectionRemoves(t *testing.T) {
	up := startUpstreamHandler(t, func(c *fasthttp.RequestCtx) { c.SetBodyString("ok") })
	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "policies", "open.rego"),
		"package routes.open\n\ndefault allow := false\n\nallow if input.request.headers[\"x-first\"] == \"1\"\n")
	gw := startOpenRouteIn(t, dir, "/hook", "http://"+up, "")
	for _, c := range []struct {
		conn string
		want int
	}{{"keep-alive", 200}, {"keep-alive, X-First", 403}, {"X-FIRST", 403}} {
		raw := "POST /hook HTTP/1.1\r\nHost: gw\r\nConnection: " + c.conn + "\r\nX-First: 1\r\nContent-Length: 2\r\n\r\nok"
		if st := rawStatus(t, gw, raw); st != c.want {
			t.Errorf("Connection: %s: status %d, want %d", c.conn, st, c.want)
		}
	}
}

// rawStatus sends raw, as it is, on a new connection to gw and returns the answer's status.
func rawStatus(t *testing.T, gw, raw string) int {
	t.Helper()
	conn, err := net.Dial("tcp", gw)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	var resp fasthttp.Response
	if err := resp.Read(bufio.NewReader(conn)); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode()
}

// TestRealRequestsStillRoute: what the framing checks must not refuse. A Host in any case,
// with a port or as an IPv6 literal; a target starting "//" that fasthttp reads no host
// from (a sender whose base URL ends in "/"), merged; a Connection field naming
// X-Forwarded-For, which behind a trusted proxy still gives the client's address.
func TestRealRequestsStillRoute(t *testing.T) {
	up := startUpstreamHandler(t, func(c *fasthttp.RequestCtx) { c.SetBodyString("ok") })
	send := func(gw, raw string) int { return rawStatus(t, gw, raw) }
	hosted := startOpenRouteIn(t, openPolicyDir(t), "/hook", "http://"+up, `host = "gw.example"`)
	open := startOpenRoute(t, "/hook", up)
	for _, c := range []struct{ gw, target, host string }{
		{hosted, "/hook", "gw.example"}, {hosted, "/hook", "GW.Example"}, {hosted, "/hook", "gw.example:8443"},
		{open, "/hook", "[2001:db8::1]:8080"}, {open, "/hook", "[::1]"},
		{hosted, "//hook", "gw.example"}, {open, "//hook", "gw"}, {open, "//hook?x=1", "gw"},
	} {
		if st := send(c.gw, "POST "+c.target+" HTTP/1.1\r\nHost: "+c.host+"\r\nContent-Length: 2\r\n\r\nok"); st != 200 {
			t.Errorf("POST %s, Host %s: status %d, want 200", c.target, c.host, st)
		}
	}
	if st := send(open, "POST //gw.example/hook?next=http://x HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\nok"); st != 400 {
		t.Errorf("a target fasthttp reads a host from: status %d, want 400", st)
	}

	dir := t.TempDir()
	testutil.WriteFile(t, filepath.Join(dir, "policies", "open.rego"),
		"package routes.open\n\ndefault allow := false\n\nallow if input.request.remote_ip == \"203.0.113.9\"\n")
	_, proxied := startServer(t, filepath.Join(dir, "gateway.toml"), `
[server]
trusted_proxies = ["127.0.0.1"]
[policies]
dir = "policies"
[[route]]
name = "open"
path = "/hook"
upstream = "http://`+up+`"
policy = "routes.open"
`, nil)
	for _, conn := range []string{"keep-alive", "keep-alive, X-Forwarded-For"} {
		if st := send(proxied, "POST /hook HTTP/1.1\r\nHost: gw\r\nConnection: "+conn+"\r\nX-Forwarded-For: 203.0.113.9\r\nContent-Length: 2\r\n\r\nok"); st != 200 {
			t.Errorf("Connection: %s: status %d, want 200 (remote_ip is the client behind the trusted proxy)", conn, st)
		}
	}
}
