package server

import (
	"bufio"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestStripHopShortcut: stripping with the one-pass shortcut leaves exactly the headers the
// full strip leaves, for requests and responses with hop-by-hop headers in any case, names
// listed in Connection, chunked bodies and none of these.
func TestStripHopShortcut(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	names := append([]string{"X-A", "X-Listed", "Content-Type", "X-Hub-Signature-256", "Tee", "Upgrades"}, hopHeaders[:]...)
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
	os.WriteFile(filepath.Join(dir, "github.secret"), []byte("bench-secret"), 0o600)
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
