package lazyconn

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/tlsconf/tlstest"
)

// upstreamPeer listens on loopback and hands each connection it accepts to serve.
func upstreamPeer(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
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
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

// exchange writes one request byte on c and reads the one-byte answer.
func exchange(t *testing.T, c net.Conn, b byte) {
	t.Helper()
	if _, err := c.Write([]byte{b}); err != nil {
		t.Fatalf("request %d: %v", b, err)
	}
	got := make([]byte, 1)
	if _, err := io.ReadFull(c, got); err != nil || got[0] != b {
		t.Fatalf("answer to %d: %v %v", b, got, err)
	}
}

// echo answers each byte with itself, then does after(c) once the first answer is sent.
func echo(after func(net.Conn)) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		b := make([]byte, 1)
		for first := true; ; first = false {
			if _, err := io.ReadFull(c, b); err != nil {
				return
			}
			if _, err := c.Write(b); err != nil {
				return
			}
			if first && after != nil {
				after(c)
			}
		}
	}
}

// A connection the upstream closed while it sat idle is not written to: the next request's
// Write sends nothing and says ErrStale, which the clients send again elsewhere.
func TestIdleConnectionClosedByThePeerIsStale(t *testing.T) {
	closed := make(chan struct{})
	addr := upstreamPeer(t, echo(func(c net.Conn) { c.Close(); close(closed) }))
	c, err := Dial(addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange(t, c, 1)
	<-closed
	time.Sleep(3 * IdleCheck)
	if n, err := c.Write([]byte{2}); n != 0 || !errors.Is(err, ErrStale) {
		t.Fatalf("write on a connection the peer closed: %d, %v; want 0, ErrStale", n, err)
	}
}

// Bytes nobody asked for, left on an idle connection, would be read as the next request's
// answer: such a connection is stale too.
func TestUnaskedBytesMakeAnIdleConnectionStale(t *testing.T) {
	addr := upstreamPeer(t, echo(func(c net.Conn) { _, _ = c.Write([]byte("HTTP/1.1 200 OK\r\n\r\n")) }))
	c, err := Dial(addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange(t, c, 1)          // reads the answer's one byte; the rest stays in the socket
	time.Sleep(10 * IdleCheck) // time for the stray bytes to arrive, and to idle
	if n, err := c.Write([]byte{2}); n != 0 || !errors.Is(err, ErrStale) {
		t.Fatalf("write with unasked-for bytes waiting: %d, %v; want 0, ErrStale", n, err)
	}
}

// A live connection carries the next request after idling, and a connection in steady use
// is not peeked at: only the first request after IdleCheck of idling pays for the check.
func TestLiveConnectionIsPeekedOnlyAfterIdling(t *testing.T) {
	addr := upstreamPeer(t, echo(nil))
	nc, err := Dial(addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := nc.(*Conn)
	defer c.Close()
	var peeks atomic.Int32
	c.idle.peek = func(raw syscall.RawConn) bool { peeks.Add(1); return peerGone(raw) }
	for i := range 200 {
		exchange(t, c, byte(i))
	}
	// The loop's exchanges take microseconds each; a slow machine may stall one past
	// IdleCheck, so allow a few.
	if n := peeks.Load(); n > 5 {
		t.Fatalf("%d peeks in 200 back-to-back requests", n)
	}
	before := peeks.Load()
	time.Sleep(3 * IdleCheck)
	exchange(t, c, 7)
	if peeks.Load() != before+1 {
		t.Fatalf("the request after idling peeked %d times, want once", peeks.Load()-before)
	}
	exchange(t, c, 8)
}

// A connection a Listener accepted (the gateway's side of a client's) is never checked:
// its Write is an answer, not a request on an idle connection.
func TestAcceptedConnectionIsNotChecked(t *testing.T) {
	c, _, peer := pair(t)
	if c.idle != nil {
		t.Fatal("an accepted connection has an idle check")
	}
	if _, err := peer.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatal(err)
	}
	peer.Close()
	time.Sleep(3 * IdleCheck)
	if _, err := c.Write([]byte{1}); errors.Is(err, ErrStale) {
		t.Fatal("an accepted connection said ErrStale")
	}
}

// Over TLS the check starts after the handshake: a server's session tickets, still unread
// when the first request is written, do not make a new connection stale. The server's
// close_notify and close do make an idle one stale, seen through the TLS connection.
func TestDialTLSChecksAfterTheHandshake(t *testing.T) {
	ca := tlstest.NewCA(t, "lazyconn test CA")
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.1").TLS}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	closeNow := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go echo(func(c net.Conn) {
				<-closeNow
				c.Close() // a TLS close: close_notify, then the socket
			})(c)
		}
	}()
	dial := DialTLS(&tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}, 5*time.Second)
	c, err := dial(ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(3 * IdleCheck) // the tickets arrive and wait, unread
	exchange(t, c, 1)
	close(closeNow)
	time.Sleep(10 * IdleCheck) // time for the server to close, and to idle
	if _, err := c.Write([]byte{2}); !errors.Is(err, ErrStale) {
		t.Fatalf("write after the server's TLS close: %v; want ErrStale", err)
	}
}

// An IPv6 address is dialed: fasthttp's own Dial, IPv4 only, gave up on "[::1]" without
// trying it. Nothing listens on port 1, so a refusal proves the attempt was made.
func TestDialIPv6(t *testing.T) {
	_, err := Dial("[::1]:1", time.Second)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EAFNOSUPPORT):
		t.Skipf("this machine has no IPv6 loopback: %v", err)
	default:
		t.Fatalf("dialing [::1]:1: %v; want connection refused", err)
	}
}
