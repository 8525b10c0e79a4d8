package rawreq

import (
	"bytes"
	"os"
	"testing"

	"github.com/valyala/fasthttp"
)

// FuzzParse checks that Parse never panics, that what it accepts round-trips through Wire
// unchanged, and that fasthttp (the gateway's parser) reads the same method and body from
// Wire whenever it accepts it. Run: go test -fuzz FuzzParse ./engine/rawreq
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"POST /hooks/github HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
		"POST / HTTP/1.1\nHost: a\n\n{\"a\":1}\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"=> Send header, 18 bytes (0x12)\n0000: 47 45 54 20 2f 20 48 54 54 50 2f 31 2e 31 0d 0a GET / HTTP/1.1..\n0010: 0d 0a                                           ..\n",
		"POST / HTTP/1.1\nA: 1\n  folded\n\n",
		// What the gateway's wire-level review found: trailers, other codings, odd names.
		"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Internal-User: admin\r\n\r\n",
		"POST / HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nX Internal User: admin\r\nContent-Length: 0\r\n\r\n",
		"POST /x?access_token=secret HTTP/1.1\r\nX-A: 1\r\nX-A: 2\r\nX-A: 3\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n[[[[]]]]\n",
	} {
		f.Add([]byte(s))
	}
	for _, name := range []string{"testdata/curl-trace.txt", "testdata/curl-trace-time-chunked.txt"} {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := Parse(in)
		if err != nil {
			return
		}
		w := r.Wire()
		r2, err := Parse(w)
		if err != nil {
			t.Fatalf("Parse accepted %q but not its Wire %q: %v", in, w, err)
		}
		if w2 := r2.Wire(); !bytes.Equal(w, w2) {
			t.Fatalf("Wire not stable:\n%q\n%q", w, w2)
		}
		if r2.Method != r.Method || r2.Target != r.Target || !bytes.Equal(r2.Body, r.Body) || len(r2.Header) > len(r.Header)+1 {
			t.Fatalf("round trip changed the request: %+v → %+v", r, r2)
		}
		var req fasthttp.Request
		if r.Into(&req, 64<<10, MaxSize) == nil {
			if string(req.Header.Method()) != r.Method || !bytes.Equal(req.Body(), r.Body) {
				t.Fatalf("fasthttp read %q %q from %q", req.Header.Method(), req.Body(), w)
			}
		}
	})
}
