package server

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestInterimAnswerIsABadGateway: the gateway strips Upgrade from what it forwards, so an
// upstream that answers 101 Switching Protocols (with its Upgrade and bytes of another
// protocol after it) broke the exchange: the client gets 502, not a 101 without an Upgrade
// on a connection then read as HTTP.
func TestInterimAnswerIsABadGateway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nRAWDATA"))
				time.Sleep(time.Second)
			}()
		}
	}()
	addr := startOpenRoute(t, "/hooks/open", ln.Addr().String())
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
	resp.Body.Close()
	if resp.StatusCode != 502 {
		t.Errorf("an upstream's 101: the client got %d, want 502", resp.StatusCode)
	}
	if strings.Contains(resp.Header.Get("Upgrade"), "websocket") {
		t.Errorf("the upstream's Upgrade reached the client")
	}
}
