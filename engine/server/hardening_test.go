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
}{
	{"content-length", "POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\nhi", ""},
	{"chunked", "POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n", ""},
	{"http/1.0", "POST /a HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi", ""},
	{"query", "POST /a?b=c HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", ""},
	{"content-length-like name", "POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length-X: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ""},
	{"CL then TE", "POST /a HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "both content-length and transfer-encoding"},
	{"TE then CL, any case", "POST /a HTTP/1.1\r\nHost: gw\r\ntransfer-encoding: chunked\r\nCONTENT-LENGTH: 3\r\n\r\n0\r\n\r\n", "both content-length and transfer-encoding"},
	{"TE identity with CL", "POST /a HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nhi", "both content-length and transfer-encoding"},
	{"obs-fold", "POST /a HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n", "obsolete line folding in a header"},
	{"obs-fold tab", "POST /a HTTP/1.1\r\nHost: gw\r\nX-A: 1\r\n\tfolded\r\nContent-Length: 0\r\n\r\n", "obsolete line folding in a header"},
	{"version", "POST /a HTTP/1.2\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", "unsupported http version"},
	{"absolute-form", "POST http://other.example/a HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", "request target is not origin-form"},
	{"asterisk-form", "OPTIONS * HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n", "request target is not origin-form"},
}

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
			if got := badFraming(&readRequest(t, c.raw).Header); got != c.want {
				t.Fatalf("badFraming = %q, want %q", got, c.want)
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
		if badFraming(h) != "" {
			b.Fatal("refused a well-formed request")
		}
	}
}
