package server

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/tlsconf/tlstest"
)

// switchingUpstream listens on loopback (TLS when tc is set): its first connection answers
// its first request with first (a 101 Switching Protocols in some form), then speaks its
// own protocol, answering whatever arrives with "FORGED"; every other connection answers
// "genuine".
func switchingUpstream(t *testing.T, first []string, tc *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			isFirst := conns.Add(1) == 1
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					rq, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, rq.Body)
					if !isFirst {
						c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\ngenuine"))
						continue
					}
					for i, part := range first {
						if i > 0 {
							time.Sleep(30 * time.Millisecond) // each part its own read
						}
						c.Write([]byte(part))
					}
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
	return ln.Addr().String()
}

// TestInterimAnswerIsABadGateway: the gateway strips Upgrade from what it forwards, so an
// upstream that answers 101 Switching Protocols broke the exchange: the client gets 502,
// not a 101 without an Upgrade on a connection then read as HTTP. And the switched
// connection carries no other request, however the 101 came (split across reads, after an
// interim answer, with the leniencies fasthttp reads it with) and over TLS too: the next
// client's request would be written into the other protocol and answered with whatever the
// upstream chose ("FORGED" here).
func TestInterimAnswerIsABadGateway(t *testing.T) {
	ca := tlstest.NewCA(t, "upstream CA")
	leaf := ca.Server(t, "127.0.0.1")
	dir := openPolicyDir(t)
	caPath := ca.WriteCA(t, dir, "ca.pem")
	answers := map[string][]string{
		"in one write":         {"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-raw\r\nConnection: Upgrade\r\n\r\n"},
		"split in the version": {"HTTP/1.", "1 101 Switching Protocols\r\nUpgrade: x-raw\r\n\r\n"},
		"after 100 Continue":   {"HTTP/1.1 100 Continue\r\n\r\n", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x-raw\r\n\r\n"},
		"after 103":            {"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n"},
		"after an empty line":  {"\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n"},
		"two spaces":           {"HTTP/1.1  101 Switching Protocols\r\n\r\n"},
	}
	for name, first := range answers {
		for _, secure := range []bool{false, true} {
			scheme, extra, tc := "http", "", (*tls.Config)(nil)
			if secure {
				scheme, extra = "https", "upstream_ca = "+`"`+caPath+`"`
				tc = &tls.Config{Certificates: []tls.Certificate{leaf.TLS}}
			}
			t.Run(scheme+"/"+name, func(t *testing.T) {
				up := switchingUpstream(t, first, tc)
				addr := startOpenRouteIn(t, dir, "/hooks/open", scheme+"://"+up, extra)
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
				for i := range 2 {
					if st, _, body := send(); st != 200 || body != "genuine" {
						t.Errorf("request %d after the 101: %d %q, want 200 \"genuine\" from a connection that was not switched", i+2, st, body)
					}
				}
			})
		}
	}
}
