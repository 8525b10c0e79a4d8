package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestInterimAnswerIsABadGateway: the gateway strips Upgrade from what it forwards, so an
// upstream that answers 101 Switching Protocols broke the exchange: the client gets 502,
// not a 101 without an Upgrade on a connection then read as HTTP. And the switched
// connection carries no other request: the next client's would be written into the other
// protocol and answered with whatever the upstream chose ("FORGED" here).
func TestInterimAnswerIsABadGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			first := conns.Add(1) == 1
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					rq, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, rq.Body)
					if !first {
						c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ngenuine"))
						continue
					}
					c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-raw\r\nConnection: Upgrade\r\n\r\n"))
					// Now in its own protocol: it answers whatever arrives with bytes it chose.
					buf := make([]byte, 4096)
					if _, err := br.Read(buf); err == nil {
						c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nFORGED"))
					}
					time.Sleep(time.Second)
					return
				}
			}()
		}
	}()
	addr := startOpenRoute(t, "/hooks/open", ln.Addr().String())
	send := func() (int, http.Header, string) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write([]byte("POST /hooks/open HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\n\r\n{}"))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header, string(b)
	}
	if st, h, _ := send(); st != 502 || strings.Contains(h.Get("Upgrade"), "x-raw") {
		t.Errorf("an upstream's 101: the client got %d (Upgrade %q), want 502", st, h.Get("Upgrade"))
	}
	for i := range 3 {
		if st, _, body := send(); st != 200 || body != "genuine" {
			t.Errorf("request %d after the 101: %d %q, want 200 \"genuine\" from a connection that was not switched", i+2, st, body)
		}
	}
}
