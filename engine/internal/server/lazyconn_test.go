package server

import (
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
)

// armCounter counts the deadlines armed on the connections its listener accepts.
type armCounter struct {
	net.Listener
	arms atomic.Int32
}

func (l *armCounter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &armCounted{Conn: c, l: l}, nil
}

type armCounted struct {
	net.Conn
	l *armCounter
}

func (c *armCounted) SetReadDeadline(t time.Time) error {
	c.l.arms.Add(1)
	return c.Conn.SetReadDeadline(t)
}

func (c *armCounted) SetWriteDeadline(t time.Time) error {
	c.l.arms.Add(1)
	return c.Conn.SetWriteDeadline(t)
}

// fasthttp moves a keep-alive connection's read, idle and write deadlines later at every
// request; the server hands it connections that arm them only when one comes earlier, so
// 200 requests on one connection arm a few, not 600. The slowloris tests (engine/gateway)
// check that the deadlines still hold.
func TestKeepAliveRequestsDoNotRearmDeadlines(t *testing.T) {
	up := startUpstream(t)
	dir := openPolicyDir(t)
	cfgText := `
[policies]
dir = "policies"
[[route]]
name = "plain"
prefix = "/plain/"
upstream = "http://` + up + `"
policy = "routes.open"
`
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &armCounter{Listener: raw}
	startServerOn(t, ln, filepath.Join(dir, "gateway.toml"), cfgText, func(_ *config.Config, o *Options) {
		o.Limits.ReadTimeout, o.Limits.WriteTimeout, o.Limits.IdleTimeout = 10*time.Second, 10*time.Second, time.Minute
	})
	client := &fasthttp.HostClient{Addr: raw.Addr().String(), MaxConns: 1}
	const n = 200
	for i := range n {
		code, _, err := client.Post(nil, "http://gateway/plain/x", nil)
		if err != nil || code != 200 {
			t.Fatalf("request %d: %d %v", i, code, err)
		}
	}
	if arms := ln.arms.Load(); arms > 4 {
		t.Fatalf("%d keep-alive requests armed %d deadlines on their connection, want at most 4 (without lazyconn: 3 a request)", n, arms)
	}
}
