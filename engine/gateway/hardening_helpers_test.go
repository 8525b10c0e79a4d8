package gateway

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// hardPolicy allows everything, with an optional dedupe key: the hardening tests look at what
// the listener and the proxy do, so the policy stays out of the way.
const hardPolicy = `package routes.hard

allow := true

dedupe := {"key": input.request.headers["x-delivery"], "ttl": "1h"} if input.request.headers["x-delivery"]
`

// hardConfig is a gateway with one catch-all route; {{UPSTREAM}}, {{EXTRA}} (more [server]
// keys) and {{DECISIONS}} are replaced by startHard.
const hardConfig = `
[server]
listen = "127.0.0.1:0"
max_body = "64KiB"
max_header = "8KiB"
read_timeout = "2s"
write_timeout = "2s"
idle_timeout = "5s"
{{EXTRA}}

[admin]
listen = "127.0.0.1:0"

[log]
decisions = "{{DECISIONS}}"

[[route]]
name = "hard"
prefix = "/"
upstream = "{{UPSTREAM}}"
policy = "routes.hard"
timeout = "2s"
`

// startHard runs hardConfig; decisions is "off" or a file name in the env's directory.
func startHard(t testing.TB, upstreamURL, extra, decisions string) *env {
	t.Helper()
	if decisions != "off" {
		decisions = "{{DIR}}/" + decisions
	}
	cfg := strings.NewReplacer("{{UPSTREAM}}", upstreamURL, "{{EXTRA}}", extra, "{{DECISIONS}}", decisions).Replace(hardConfig)
	return startEnv(t, cfg, map[string]string{"policies/hard.rego": hardPolicy}, Options{})
}

// rawResult is what came back on one raw TCP exchange.
type rawResult struct {
	statuses []int // parsed responses in order; -1 marks bytes that were not a response
	closed   bool  // the gateway closed the connection (EOF or reset) before the wait ran out
	raw      []byte
}

func (r rawResult) String() string {
	var b strings.Builder
	b.WriteString("statuses=")
	for i, s := range r.statuses {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(s))
	}
	if r.closed {
		b.WriteString(" closed")
	} else {
		b.WriteString(" open")
	}
	return b.String()
}

// rawExchange dials addr (from local, when set), writes payload, half-closes when asked, and
// reads until the gateway closes or wait runs out.
func rawExchange(t testing.TB, local *net.TCPAddr, addr string, payload []byte, halfClose bool, wait time.Duration) rawResult {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	// A write may fail once the gateway has answered and closed: what it sent still counts.
	_, _ = c.Write(payload)
	if halfClose {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	var res rawResult
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		res.raw = append(res.raw, buf[:n]...)
		if err != nil {
			var ne net.Error
			res.closed = !(errors.As(err, &ne) && ne.Timeout())
			break
		}
	}
	// An answer to HEAD has no body whatever its Content-Length says.
	req := &http.Request{Method: "GET"}
	if bytes.HasPrefix(payload, []byte("HEAD ")) {
		req.Method = "HEAD"
	}
	br := bufio.NewReader(bytes.NewReader(res.raw))
	for {
		if _, err := br.Peek(1); err != nil {
			break
		}
		r, err := http.ReadResponse(br, req)
		if err != nil {
			res.statuses = append(res.statuses, -1)
			break
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		res.statuses = append(res.statuses, r.StatusCode)
		if r.Close {
			// Nothing after "Connection: close" is an answer. (A 400 to a HEAD request whose
			// header did not parse carries a body: the gateway did not trust the method.)
			break
		}
	}
	return res
}

// faultUpstream is a raw TCP upstream that misbehaves on request: the request path picks
// the fault. It records every request it read and how many bytes it managed to write.
type faultUpstream struct {
	ln      net.Listener
	mu      sync.Mutex
	reqs    []faultReq
	conns   map[net.Conn]bool
	wg      sync.WaitGroup
	written atomic.Int64 // bytes written by the last streaming answer before the gateway hung up
}

type faultReq struct {
	Path, Delivery string
}

func startFaultUpstream(t testing.TB) *faultUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveFaults(t, ln)
}

func serveFaults(t testing.TB, ln net.Listener) *faultUpstream {
	u := &faultUpstream{ln: ln, conns: map[net.Conn]bool{}}
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.mu.Lock()
			u.conns[c] = true
			u.mu.Unlock()
			u.wg.Add(1)
			go func() {
				defer u.wg.Done()
				defer func() {
					u.mu.Lock()
					delete(u.conns, c)
					u.mu.Unlock()
					c.Close()
				}()
				u.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		u.mu.Lock()
		for c := range u.conns {
			c.Close() // the gateway's idle keep-alive connections
		}
		u.mu.Unlock()
		u.wg.Wait()
	})
	return u
}

func (u *faultUpstream) URL() string { return "http://" + u.ln.Addr().String() }

func (u *faultUpstream) requests() []faultReq {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]faultReq(nil), u.reqs...)
}

func (u *faultUpstream) serve(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, faultReq{Path: req.URL.Path, Delivery: req.Header.Get("X-Delivery")})
		served := len(u.reqs)
		u.mu.Unlock()
		_ = c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		switch req.URL.Path {
		case "/slow":
			time.Sleep(1500 * time.Millisecond)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
		case "/midclose":
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly the first part")
			return
		case "/midclose-chunked":
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
			return
		case "/midclose-headers":
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/pl")
			return
		case "/garbage":
			_, _ = io.WriteString(c, "SURPRISE\r\n\r\n")
			return
		case "/stray":
			// An answer numbered by the requests served, then, once the gateway has read it, a
			// second one that no request asked for.
			body := fmt.Sprintf("ok%d", served)
			_, _ = fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			time.Sleep(20 * time.Millisecond)
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray")
		case "/big-headers":
			// 12KiB of headers: more than fasthttp's default buffer, well within the gateway's.
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nSet-Cookie: c="+strings.Repeat("c", 12<<10)+"\r\nContent-Length: 2\r\n\r\nok")
		case "/huge-headers":
			u.stream(c, "HTTP/1.1 200 OK\r\n", "X-Huge: "+strings.Repeat("h", 1000)+"\r\n")
			return
		case "/huge-body":
			u.stream(c, "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n", strings.Repeat("b", 32<<10))
			return
		case "/huge-body-chunked":
			u.stream(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", chunk(strings.Repeat("b", 32<<10)))
			return
		default:
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	}
}

// stream writes head, then piece over and over (up to 1GiB) until the gateway hangs up.
func (u *faultUpstream) stream(c net.Conn, head, piece string) {
	n, _ := io.WriteString(c, head)
	total := int64(n)
	for total < 1<<30 {
		n, err := io.WriteString(c, piece)
		total += int64(n)
		if err != nil {
			break
		}
	}
	u.written.Store(total)
}
