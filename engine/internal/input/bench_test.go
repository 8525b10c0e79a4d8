package input

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// benchRequest is a GitHub push delivery as the listener reads it: the headers GitHub sends
// and a 2KiB JSON body.
func benchRequest(tb testing.TB, extra string) *fasthttp.Request {
	tb.Helper()
	body := `{"ref":"refs/heads/main","before":"0000000000000000000000000000000000000000","after":"1111111111111111111111111111111111111111",` +
		`"repository":{"id":1296269,"name":"hello","full_name":"octo/hello","private":false,"owner":{"login":"octo","id":1},"topics":["a","b","c"]},` +
		`"commits":[{"id":"1111111111111111111111111111111111111111","message":"fix","timestamp":"2026-01-01T00:00:00Z","added":[],"removed":[],"modified":["README.md"]}],` +
		`"pad":"` + strings.Repeat("x", 1500) + `"}`
	raw := "POST /hooks/github?x=1 HTTP/1.1\r\nHost: gw.example\r\nUser-Agent: GitHub-Hookshot/abc\r\nAccept: */*\r\n" +
		"Content-Type: application/json\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\n" +
		"X-GitHub-Hook-ID: 292430182\r\nX-GitHub-Hook-Installation-Target-ID: 79929171\r\nX-GitHub-Hook-Installation-Target-Type: repository\r\n" +
		"X-Hub-Signature: sha1=0000000000000000000000000000000000000000\r\nX-Hub-Signature-256: sha256=0000000000000000000000000000000000000000000000000000000000000000\r\n" +
		extra + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		tb.Fatal(err)
	}
	return &req
}

func benchCapture(b *testing.B, req *fasthttp.Request, object bool) {
	m := fuzzMeta()
	var bd Builder
	b.ReportAllocs()
	for b.Loop() {
		bd.Reset()
		c := bd.Capture(req, m)
		if object {
			_ = c.Object()
		} else {
			_ = c.Get("x-hub-signature-256")
		}
	}
}

// BenchmarkCapture measures the capture of a GitHub delivery: flat (a compiled policy reads a
// few headers) and whole (the object, input.request.json included).
func BenchmarkCapture(b *testing.B) {
	b.Run("flat", func(b *testing.B) { benchCapture(b, benchRequest(b, ""), false) })
	b.Run("object", func(b *testing.B) { benchCapture(b, benchRequest(b, ""), true) })
	var distinct, repeated bytes.Buffer
	for i := range 80 {
		distinct.WriteString("X-Name-" + strconv.Itoa(i) + ": v\r\n")
		repeated.WriteString("X-Same: v" + strconv.Itoa(i) + "\r\n")
	}
	b.Run("distinct80", func(b *testing.B) { benchCapture(b, benchRequest(b, distinct.String()), false) })
	b.Run("repeated80", func(b *testing.B) { benchCapture(b, benchRequest(b, repeated.String()), false) })
}

// BenchmarkHandover is a cross-checked request's capture handed to the cross-check's worker:
// the request path's part (Handover, after the capture), and the worker's (the object built
// from the copy).
func BenchmarkHandover(b *testing.B) {
	req := benchRequest(b, "")
	m := fuzzMeta()
	m.ParseJSON = false // as for the reference route, whose policy reads no JSON
	for _, worker := range []bool{false, true} {
		name := "request"
		if worker {
			name = "request+worker"
		}
		b.Run(name, func(b *testing.B) {
			var bd Builder
			b.ReportAllocs()
			for b.Loop() {
				bd.Reset()
				h := bd.Capture(req, m).Handover()
				if worker {
					_ = Document(h.Object(), m, nil)
				}
			}
		})
	}
}
