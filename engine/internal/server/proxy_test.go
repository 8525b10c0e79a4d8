package server

import (
	"bufio"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestStripHopShortcut: stripping with the one-pass shortcut leaves exactly the headers the
// full strip leaves, for requests and responses with hop-by-hop headers in any case, names
// listed in Connection, chunked bodies and none of these.
func TestStripHopShortcut(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := append([]string{"X-A", "X-Listed", "Content-Type", "X-Hub-Signature-256", "Tee", "Upgrades"}, hopHeaders...)
	casing := func(s string) string {
		switch r.IntN(3) {
		case 0:
			return strings.ToLower(s)
		case 1:
			return strings.ToUpper(s)
		}
		return s
	}
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
		stripHop(&a.Header)
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
