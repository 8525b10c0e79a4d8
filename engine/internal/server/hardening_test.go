package server

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// framingCases are requests fasthttp parses but the gateway refuses (want != ""), and their
// well-formed neighbours it must keep accepting.
var framingCases = []struct {
	name, raw, want string
	status          int
}{
	{"content-length", "POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\nhi", "", 0},
	{"chunked", "POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", "", 0},
	{"http/1.0", "POST /a HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi", "", 0},
	{"query", "POST /a?b=c HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", "", 0},
	{"content-length-like name", "POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length-X: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "", 0},
	{"CL then TE", "POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "both content-length and transfer-encoding", 400},
	{"TE then CL, any case", "POST /a HTTP/1.1\r\nHost: gw\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 3\r\n\r\n0\r\n\r\n", "both content-length and transfer-encoding", 400},
	{"TE identity with CL", "POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nhi", reasonTransferCode, 400},
	{"TE identity", "POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: identity\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n", reasonTransferCode, 400},
	{"TE Chunked any case", "POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding:  CHUNKED \r\n\r\n0\r\n\r\n", "", 0},
	{"space in a name", "POST /a HTTP/1.1\r\nHost: gw\r\nX Internal User: admin\r\nContent-Length: 0\r\n\r\n", reasonName, 400},
	{"trailer field", "POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Internal-User: admin\r\n\r\n", reasonTrailers, 400},
	{"trailer announced", "POST /a HTTP/1.1\r\nHost: gw\r\nTrailer: X-Internal-User\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", reasonTrailers, 400},
	{"empty trailer section", "POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", "", 0},
	{"max headers", "POST /a HTTP/1.1\r\nHost: gw\r\n" + strings.Repeat("X-A: 1\r\n", testMaxHeaders-2) + "Content-Length: 0\r\n\r\n", "", 0},
	{"one header too many", "POST /a HTTP/1.1\r\nHost: gw\r\n" + strings.Repeat("X-A: 1\r\n", testMaxHeaders-1) + "Content-Length: 0\r\n\r\n", reasonTooMany, 431},
	{"obs-fold", "POST /a HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n", "obsolete line folding in a header", 400},
	{"obs-fold tab", "POST /a HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n\tfolded\r\nContent-Length: 0\r\n\r\n", "obsolete line folding in a header", 400},
	{"version", "POST /a HTTP/1.2\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", "unsupported http version", 400},
	{"absolute-form", "POST http://other.example/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", "request target is not origin-form", 400},
	{"connect", "CONNECT /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", "request target is not origin-form", 400},
	{"connect, authority-form", "CONNECT gw:443 HTTP/1.1\r\nHost: gw:443\r\n\r\n", "request target is not origin-form", 400},
	{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", "request target is not origin-form", 400},
	{"underscore in a name", "POST /a HTTP/1.1\r\nHost: gw\r\nX_Forwarded_For: 6.6.6.6\r\nContent-Length: 0\r\n\r\n", reasonUnderscore, 400},
	// fasthttp reads a host out of a target starting "//" (when "://" follows anywhere).
	{"target starting //", "POST //internal.example/a?next=http://x HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", reasonTarget, 400},
	// fasthttp takes "user:pw@" for a URI's userinfo, which its client sends as Authorization.
	{"host with userinfo", "POST /a HTTP/1.1\r\nHost: admin:hunter2@public.example\r\nContent-Length: 0\r\n\r\n", reasonHost, 400},
	{"host with @", "POST /a HTTP/1.1\r\nHost: public.example@internal.example\r\nContent-Length: 0\r\n\r\n", reasonHost, 400},
	{"host with a path", "POST /a HTTP/1.1\r\nHost: gw/x\r\nContent-Length: 0\r\n\r\n", reasonHost, 400},
	{"host with port", "POST /a HTTP/1.1\r\nHost: gw.example:8443\r\nContent-Length: 0\r\n\r\n", "", 0},
	{"host IPv6 literal", "POST /a HTTP/1.1\r\nHost: [2001:db8::1]:8080\r\nContent-Length: 0\r\n\r\n", "", 0},
	// Reported for removal (connNamed: TestBadFraming), not refused.
	{"connection naming a field", "POST /a HTTP/1.1\r\nHost: gw\r\nConnection: keep-alive, X-Hub-Signature-256\r\nX-Hub-Signature-256: sha256=0\r\nContent-Length: 0\r\n\r\n", "", 0},
	// fasthttp keeps the last Content-Type only; a proxy before the gateway may read the first.
	{"content-type twice", "POST /a HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n", reasonContentType, 400},
	{"user-agent twice", "POST /a HTTP/1.1\r\nHost: gw\r\nUser-Agent: GitHub-Hookshot/abc\r\nuser-agent: curl/8\r\nContent-Length: 0\r\n\r\n", reasonUserAgent, 400},
}

// testMaxHeaders is the max_headers the framing cases run with.
const testMaxHeaders = 10

func readRequest(t testing.TB, raw string) *fasthttp.Request {
	t.Helper()
	req := &fasthttp.Request{}
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("fasthttp refused %q itself: %v", raw, err)
	}
	return req
}

func TestBadFraming(t *testing.T) {
	for _, c := range framingCases {
		t.Run(c.name, func(t *testing.T) {
			status, got, _, connNamed := badFraming(&readRequest(t, c.raw).Header, testMaxHeaders, false)
			if got != c.want || status != c.status {
				t.Fatalf("badFraming = %d %q, want %d %q", status, got, c.status, c.want)
			}
			if want := strings.Contains(c.raw, "Connection: keep-alive, X-"); connNamed != want {
				t.Fatalf("a field named by Connection reported %v, want %v", connNamed, want)
			}
		})
	}
}

// BenchmarkBadFraming measures the per-request cost of the framing check on a typical
// webhook header block (GitHub's headers).
func BenchmarkBadFraming(b *testing.B) {
	h := &readRequest(b, "POST /hooks/github HTTP/1.1\r\nHost: hooks.example.com\r\nUser-Agent: GitHub-Hookshot/abc1234\r\n"+
		"Accept: */*\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\n"+
		"X-Hub-Signature-256: sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\r\n"+
		"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}").Header
	b.ReportAllocs()
	for b.Loop() {
		if st, _, _, _ := badFraming(h, 100, false); st != 0 {
			b.Fatal("refused a well-formed request")
		}
	}
}
