package rawreq

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestParseRaw(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		method  string
		target  string
		headers int
		body    string
		chunked bool
	}{
		{"crlf with content-length", "POST /hooks/github HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", "POST", "/hooks/github", 2, "hello", false},
		{"lf only, hand-edited", "POST /x?y=1 HTTP/1.1\nHost: a\nContent-Length: 5\n\nhello\n", "POST", "/x?y=1", 2, "hello", false},
		{"body keeps its own newlines", "POST / HTTP/1.1\nHost: a\nContent-Length: 6\n\na\r\nb\nc\n", "POST", "/", 2, "a\r\nb\nc", false},
		{"no content-length takes the rest verbatim", "POST / HTTP/1.1\nHost: a\n\n{\"a\":1}\n", "POST", "/", 1, "{\"a\":1}\n", false},
		{"no body", "GET /health HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/health", 1, "", false},
		{"file ends after the head", "GET / HTTP/1.1\nHost: a", "GET", "/", 1, "", false},
		{"leading blank lines", "\r\n\nGET / HTTP/1.0\r\n\r\n", "GET", "/", 0, "", false},
		{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "POST", "/", 2, "hello world", true},
		{"http/2 capture reads as 1.1", "POST /h HTTP/2\nhost: a\ncontent-length: 2\n\nok", "POST", "/h", 2, "ok", false},
		{"absolute form", "POST http://example.com/h HTTP/1.1\r\nHost: example.com\r\n\r\n", "POST", "http://example.com/h", 1, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := Parse([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if r.Method != c.method || r.Target != c.target || len(r.Header) != c.headers || string(r.Body) != c.body || r.Chunked != c.chunked {
				t.Fatalf("got %s %s %d headers body %q chunked %v", r.Method, r.Target, len(r.Header), r.Body, r.Chunked)
			}
			if r.Proto != "HTTP/1.1" && r.Proto != "HTTP/1.0" {
				t.Fatalf("proto %q", r.Proto)
			}
			assertFasthttpReads(t, r)
		})
	}
}

// assertFasthttpReads checks that the gateway's parser reads Wire() as r.
func assertFasthttpReads(t *testing.T, r *Request) {
	t.Helper()
	var req fasthttp.Request
	if err := r.Into(&req, 64<<10, 1<<20); err != nil {
		t.Fatalf("fasthttp cannot read %q: %v", r.Wire(), err)
	}
	if string(req.Header.Method()) != r.Method || !bytes.Equal(req.Body(), r.Body) {
		t.Fatalf("fasthttp read %s body %q, want %s %q", req.Header.Method(), req.Body(), r.Method, r.Body)
	}
	for _, h := range r.Header {
		if strings.EqualFold(h.Name, "Content-Length") || strings.EqualFold(h.Name, "Transfer-Encoding") || strings.EqualFold(h.Name, "Host") {
			continue
		}
		if got := string(req.Header.Peek(h.Name)); got != h.Value {
			t.Fatalf("header %s: fasthttp read %q, want %q", h.Name, got, h.Value)
		}
	}
}

func TestParseErrors(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"empty":                {"", "empty input"},
		"no version":           {"GET /\n\n", "line 1"},
		"bad version":          {"GET / HTTP/9\n\n", "version"},
		"space in name":        {"GET / HTTP/1.1\nX Bad : 1\n\n", "line 2: header name"},
		"obs-fold":             {"GET / HTTP/1.1\nA: 1\n  continued\n\n", "line 3: obsolete line folding"},
		"bare cr":              {"GET / HTTP/1.1\nA: 1\r2\n\n", "control character"},
		"short body":           {"POST / HTTP/1.1\nContent-Length: 10\n\nabc", "the body is 3 bytes, Content-Length says 10"},
		"extra bytes":          {"POST / HTTP/1.1\nContent-Length: 1\n\nabc", "2 bytes after"},
		"cl and te":            {"POST / HTTP/1.1\nContent-Length: 1\nTransfer-Encoding: chunked\n\n0\n\n", "smuggling"},
		"gzip te":              {"POST / HTTP/1.1\nTransfer-Encoding: gzip, chunked\n\n0\n\n", "only \"chunked\""},
		"bad chunk":            {"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\nzz\r\n", "bad chunk size"},
		"trailer":              {"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n0\r\nX-Internal-User: admin\r\n\r\n", "trailer fields"},
		"identity te":          {"POST / HTTP/1.1\nTransfer-Encoding: identity\n\nGET /smuggled HTTP/1.1\n\n", "only \"chunked\""},
		"trace without header": {"== Info: nothing\n", "no \"=> Send header\""},
		"trace-ascii":          {"=> Send header, 18 bytes (0x12)\n0000: POST / HTTP/1.1\n", "--trace-ascii"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Parse([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseCurlTrace(t *testing.T) {
	raw, err := os.ReadFile("testdata/curl-trace.txt")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	const body = `{"zen":"Keep it logically awesome.","x":"0123456789abcdefghij"}`
	if r.Method != "POST" || r.Target != "/hooks/github" || string(r.Body) != body {
		t.Fatalf("got %s %s body %q", r.Method, r.Target, r.Body)
	}
	if v, _ := r.Get("x-hub-signature-256"); v != "sha256=abc" {
		t.Fatalf("signature header %q", v)
	}
	assertFasthttpReads(t, r)
}

func TestParseCurlTraceTimeChunked(t *testing.T) {
	// curl -T with Transfer-Encoding: chunked, --trace-time; the server's 100 Continue comes
	// between the head and the data.
	raw, err := os.ReadFile("testdata/curl-trace-time-chunked.txt")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "PUT" || r.Target != "/up" || !r.Chunked || string(r.Body) != "line one\nline two\n" {
		t.Fatalf("got %s %s chunked=%v body %q", r.Method, r.Target, r.Chunked, r.Body)
	}
	assertFasthttpReads(t, r)
}

func TestWireIsIdempotent(t *testing.T) {
	r, err := Parse([]byte("POST /a HTTP/1.1\nHost: h\nX-A:  spaced  \n\nbody"))
	if err != nil {
		t.Fatal(err)
	}
	w1 := r.Wire()
	r2, err := Parse(w1)
	if err != nil {
		t.Fatal(err)
	}
	if w2 := r2.Wire(); !bytes.Equal(w1, w2) {
		t.Fatalf("wire changed on a second parse:\n%q\n%q", w1, w2)
	}
	if v, _ := r2.Get("X-A"); v != "spaced" {
		t.Fatalf("value %q: surrounding whitespace is not part of it", v)
	}
	if v, _ := r2.Get("Content-Length"); v != "4" {
		t.Fatalf("Content-Length %q, want 4 (added for the body)", v)
	}
}
