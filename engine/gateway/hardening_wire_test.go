package gateway

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// wireConfig has a catch-all route whose policy refuses X-Internal-User, and a /json/ route
// whose policy reads input.request.json; {{UPSTREAM}} and {{EXTRA}} are replaced.
const wireConfig = `
[server]
listen = "127.0.0.1:0"
max_body = "1MiB"
read_timeout = "5s"
{{EXTRA}}

[admin]
listen = "127.0.0.1:0"

[log]
decisions = "{{DIR}}/decisions.log"

[[route]]
name = "json"
prefix = "/json/"
upstream = "{{UPSTREAM}}"
policy = "routes.wirejson"

[[route]]
name = "wire"
prefix = "/"
upstream = "{{UPSTREAM}}"
policy = "routes.wire"
`

var wirePolicies = map[string]string{
	"policies/wire.rego": `package routes.wire

allow if not input.request.headers["x-internal-user"]

deny contains "internal header" if input.request.headers["x-internal-user"]
`,
	"policies/wirejson.rego": `package routes.wirejson

allow if input.request.json.ok == true
`,
}

func startWire(t testing.TB, upstreamURL, extra string) *env {
	t.Helper()
	cfg := strings.NewReplacer("{{UPSTREAM}}", upstreamURL, "{{EXTRA}}", extra).Replace(wireConfig)
	return startEnv(t, cfg, wirePolicies, Options{})
}

// wireCase is one raw request and the single status it must get.
type wireCase struct {
	name, raw string
	want      int
	closed    bool // the connection must be closed after the answer
}

func runWireCases(t *testing.T, addr string, cases []wireCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := rawExchange(t, nil, addr, []byte(c.raw), false, 3*time.Second)
			if len(res.statuses) != 1 || res.statuses[0] != c.want {
				t.Errorf("got %s, want one %d", res, c.want)
			}
			if c.closed && !res.closed {
				t.Errorf("connection left open: %s", res)
			}
		})
	}
}

// TestHardeningTrailers sends a header the policy refuses as a trailer of a chunked body,
// alone, announced, and after the same name sent plainly: each is refused with 400 before
// any rule runs and the connection closed, and the recording upstream receives no field the
// policy did not see. The same header sent plainly is denied by the policy (the policy
// works), and a chunked body without trailers is forwarded.
func TestHardeningTrailers(t *testing.T) {
	up := startUpstream(t)
	e := startWire(t, up.URL(), "")
	pub, _ := e.g.Addrs()
	const head = "POST /hooks/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n"
	runWireCases(t, pub.String(), []wireCase{
		{"control/plain header denied", head + "X-Internal-User: admin\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 403, true},
		{"control/chunked without trailers", head + "Connection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 200, true},
		{"trailer", head + "\r\n2\r\nhi\r\n0\r\nX-Internal-User: admin\r\n\r\n", 400, true},
		{"trailer announced", head + "Trailer: X-Internal-User\r\n\r\n2\r\nhi\r\n0\r\nX-Internal-User: admin\r\n\r\n", 400, true},
		{"plain then trailer", head + "X-Tenant: a\r\n\r\n2\r\nhi\r\n0\r\nX-Tenant: b\r\n\r\n", 400, true},
		{"announced, none sent", head + "Trailer: X-Tenant\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 400, true},
	})
	reqs := up.requests()
	if len(reqs) != 1 || string(reqs[0].Body) != "hi" {
		t.Fatalf("upstream saw %d requests, want the control's one", len(reqs))
	}
	for _, r := range reqs {
		for name, vs := range r.Header {
			if strings.EqualFold(name, "X-Internal-User") || strings.EqualFold(name, "X-Tenant") || strings.EqualFold(name, "Trailer") {
				t.Errorf("upstream received %s: %q", name, vs)
			}
		}
	}
}

// TestHardeningTransferEncodingAndNames sends Transfer-Encoding: identity with a request as
// its "body", other codings, and header names with spaces: each gets 400 and a closed
// connection, and neither the hidden request nor the odd name reaches the upstream.
func TestHardeningTransferEncodingAndNames(t *testing.T) {
	up := startUpstream(t)
	e := startWire(t, up.URL(), "")
	pub, _ := e.g.Addrs()
	const head = "POST /hooks/a HTTP/1.1\r\nHost: gw\r\n"
	const hidden = "GET /smuggled HTTP/1.1\r\nHost: gw\r\n\r\n"
	runWireCases(t, pub.String(), []wireCase{
		{"TE identity", head + "Transfer-Encoding: identity\r\n\r\n" + hidden, 400, true},
		{"TE IDENTITY", head + "Transfer-Encoding: IDENTITY\r\n\r\n" + hidden, 400, true},
		{"space in a name", head + "X Internal User: admin\r\nContent-Length: 0\r\n\r\n", 400, true},
		{"space in a name, chunked", head + "Transfer-Encoding: chunked\r\nX Forwarded For: 10.0.0.1\r\n\r\n0\r\n\r\n", 400, true},
		{"control/TE chunked", head + "Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n2\r\nhi\r\n0\r\n\r\n", 200, true},
	})
	for _, r := range up.requests() {
		if r.URI == "/smuggled" {
			t.Errorf("the request hidden behind Transfer-Encoding: identity reached the upstream")
		}
		for name := range r.Header {
			if strings.Contains(name, " ") {
				t.Errorf("upstream received the header name %q", name)
			}
		}
	}
	if n := len(up.requests()); n != 1 {
		t.Errorf("upstream saw %d requests, want the control's one", n)
	}
}

// TestHardeningMaxHeaders sends max_headers fields (100 by default), then one more: the first
// is forwarded, the second refused with 431 and its connection closed.
func TestHardeningMaxHeaders(t *testing.T) {
	up := startUpstream(t)
	e := startWire(t, up.URL(), "")
	pub, _ := e.g.Addrs()
	fields := func(n int) string { // Host, Connection and n-2 more
		return "POST /hooks/a HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n" + strings.Repeat("X-F: 1\r\n", n-2) + "\r\n"
	}
	runWireCases(t, pub.String(), []wireCase{
		{"100 fields", fields(100), 200, true},
		{"101 fields", fields(101), 431, true},
		{"101 fields of one name", "POST /hooks/a HTTP/1.1\r\nHost: gw\r\n" + strings.Repeat("X-F: 1\r\n", 100) + "\r\n", 431, true},
	})
	if n := len(up.requests()); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

// TestHardeningReadErrorsLeakNothing sends requests fasthttp cannot read whose errors quote
// what they refused (a header value, a malformed line, the query, a trailer value), each
// carrying a secret: every one gets 400, and the secret is in neither the answer, the
// decision log nor the debug log.
func TestHardeningReadErrorsLeakNothing(t *testing.T) {
	up := startUpstream(t)
	e := startWire(t, up.URL(), "")
	pub, _ := e.g.Addrs()
	const secret = "hw-credential-9c1e"
	cases := []string{
		"POST /hooks/a HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + secret + "\x01\r\nContent-Length: 0\r\n\r\n",
		"POST /hooks/a HTTP/1.1\r\nHost: gw\r\nX-A\x01: Bearer " + secret + "\r\nContent-Length: 0\r\n\r\n",
		"POST /hooks/a?access_token=" + secret + "\x7f HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n",
		"POST /hooks/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Token: " + secret + "\x01\r\n\r\n",
		"POST /hooks/a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nAuthorization: Bearer " + secret + "\r\n\r\n",
		"GET /hooks/a?access_token=" + secret + " HTTP/1.1 x\r\nHost: gw\r\n\r\n",
	}
	for _, raw := range cases {
		res := rawExchange(t, nil, pub.String(), []byte(raw), false, 3*time.Second)
		if len(res.statuses) != 1 || res.statuses[0] != 400 {
			t.Errorf("%q: %s, want 400", raw, res)
		}
		if strings.Contains(string(res.raw), secret) {
			t.Errorf("the answer quotes the request: %q", res.raw)
		}
	}
	e.stop()
	decisions, err := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(decisions), "\n"); n != len(cases) {
		t.Errorf("decision log has %d records, want %d", n, len(cases))
	}
	for name, text := range map[string]string{"decision log": string(decisions), "debug log": e.logBuf.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the %s carries a value of a request it could not read:\n%s", name, text)
		}
	}
	if len(up.requests()) != 0 {
		t.Errorf("a request reached the upstream")
	}
}

// TestHardeningJSONRefusals checks the JSON limits' answers on a route whose policy reads
// input.request.json: a payload within them is parsed and decided on, a nesting of 9,000
// levels gets 422, 1MiB of empty objects 413, and nothing refused reaches the upstream.
func TestHardeningJSONRefusals(t *testing.T) {
	up := startUpstream(t)
	e := startWire(t, up.URL(), "")
	if r := e.do("POST", "/json/a", []byte(`{"ok":true,"items":[1,2,3]}`), map[string]string{"Content-Type": "application/json"}); r.Status != 200 {
		t.Fatalf("a payload within the limits: %d, want 200", r.Status)
	}
	if r := e.do("POST", "/json/a", []byte(`{"ok":false}`), map[string]string{"Content-Type": "application/json"}); r.Status != 403 {
		t.Fatalf("a payload the policy refuses: %d, want 403", r.Status)
	}
	deep := strings.Repeat("[", 9000) + strings.Repeat("]", 9000)
	if r := e.do("POST", "/json/a", []byte(deep), map[string]string{"Content-Type": "application/json"}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("9,000 levels: %d, want 422", r.Status)
	}
	many := "[" + strings.Repeat("{},", (1<<20-2)/3-1) + "{}]"
	if r := e.do("POST", "/json/a", []byte(many), nil); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("1MiB of empty objects: %d, want 413", r.Status)
	}
	if n := len(up.requests()); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}

// TestHardeningPolicyErrorsLeakNothing makes the policy fail on the value of a masked header
// (a builtin error quotes its operand): the request gets 500, and the value is in neither the
// answer, the decision log (which masks the header) nor the process log, which still name the
// failing builtin.
func TestHardeningPolicyErrorsLeakNothing(t *testing.T) {
	up := startUpstream(t)
	cfg := strings.NewReplacer("{{UPSTREAM}}", up.URL(), "{{EXTRA}}", "").Replace(wireConfig)
	e := startEnv(t, cfg, map[string]string{
		"policies/wire.rego": `package routes.wire

allow if time.parse_rfc3339_ns(input.request.headers["x-webhook-token"]) > 0
`,
		"policies/wirejson.rego": wirePolicies["policies/wirejson.rego"],
	}, Options{})
	const secret = "hw-credential-77ab"
	r := e.do("POST", "/hooks/a", []byte("{}"), map[string]string{"X-Webhook-Token": "Bearer " + secret})
	if r.Status != 500 || strings.Contains(r.Body, secret) {
		t.Fatalf("policy error: %d %q, want 500 without the value", r.Status, r.Body)
	}
	e.stop()
	decisions, err := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"decision log": string(decisions), "process log": e.logBuf.String()} {
		if strings.Contains(text, secret) {
			t.Errorf("the %s carries the header value the policy failed on:\n%s", name, text)
		}
		if !strings.Contains(text, "time.parse_rfc3339_ns") {
			t.Errorf("the %s does not name the failing builtin:\n%s", name, text)
		}
	}
}
