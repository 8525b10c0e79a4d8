// Package lazyconn wraps the gateway's keep-alive connections, the listener's and the
// upstreams', so that they cost fasthttp less and fail it less: deadlines armed only when
// they come earlier, a graceful close, and for an upstream connection, the dialing (IPv4 or
// IPv6, TLS) and a check before it carries a request after idling (Configure).
//
// fasthttp sets three deadlines on a keep-alive connection for every request it serves
// (the idle wait, the read, the write) and two on an upstream connection for every request
// it forwards. Each re-arms the runtime poller's timer: two clock reads, the timer heap and
// the poller's lock, about 0.2 µs, a microsecond of every proxied request. A Conn records the
// deadline asked for and re-arms the poller only when that deadline is earlier than the one
// armed (or none is armed). When the armed deadline fires before the one asked for, the
// read or write resumes under the one asked for.
//
// The contract is net.Conn's: a Read or Write returns os.ErrDeadlineExceeded only once
// the deadline last set for it has passed, and never later than the poller's timer allows
// for it. A deadline in the past interrupts a blocked call at once, as it does on net.Conn.
//
// A Conn also closes gracefully when asked to (Linger): a server that answers a request it
// did not read to the end, then closes, would otherwise have the client's answer lost to a
// reset.
//
// A Conn that Dial or DialTLS made also checks, before it carries another request after
// sitting idle, that the upstream has not closed it meanwhile (ErrStale): fasthttp's pool
// keeps such a connection, and the next request on it would fail with nothing sent.
package lazyconn

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// Conn is a net.Conn with lazily armed deadlines. Create with Wrap.
type Conn struct {
	net.Conn
	read, write half
	linger      atomic.Bool // Close drains first (Linger)
	idle        *idleCheck  // a dialed connection's; nil on one a Listener accepted
	plain       bool        // its Reads are the answers themselves, not TLS records
}

// LingerTimeout and LingerMax bound how long and how much a lingering Close reads and
// discards.
const (
	LingerTimeout = 500 * time.Millisecond
	LingerMax     = 1 << 20
)

// Linger makes Close linger: it sends its end of the stream (FIN) first, then reads and
// discards what the peer still sends, until the peer closes its end, LingerTimeout passes
// or LingerMax bytes were read, and only then closes. A connection closed with bytes it
// has not read (the rest of a body over the server's limit) is reset by the kernel, and the
// client, still writing that body, gets "connection reset" in place of the answer it was
// sent. A connection whose net.Conn cannot close its writing half alone closes at once.
func (c *Conn) Linger() { c.linger.Store(true) }

// Close implements net.Conn.
func (c *Conn) Close() error {
	if c.linger.Load() {
		c.drain()
	}
	return c.Conn.Close()
}

// drain is a lingering Close's wait. It sets the read deadline on the net.Conn itself: the
// one asked for through Conn no longer matters.
func (c *Conn) drain() {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil || c.Conn.SetReadDeadline(time.Now().Add(LingerTimeout)) != nil {
		return
	}
	_, _ = io.CopyN(io.Discard, c.Conn, LingerMax)
}

// Wrap returns c with lazily armed deadlines.
func Wrap(c net.Conn) *Conn { return &Conn{Conn: c} }

// half is the deadline of one direction. want and armed are Unix nanoseconds; 0: none.
type half struct {
	want  atomic.Int64 // the deadline asked for
	armed atomic.Int64 // the deadline the poller holds
	mu    sync.Mutex   // serialises arming
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	if n := t.UnixNano(); n != 0 {
		return n
	}
	return 1 // the epoch itself: long past, and not "none"
}

func instant(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// later reports whether an armed deadline a may stay for the deadline w asked for: w is
// none, or comes no earlier than a.
func later(w, a int64) bool { return w == 0 || (a != 0 && w >= a) }

// set records t and arms it when it comes before the armed deadline.
func (h *half) set(t time.Time, arm func(time.Time) error) error {
	w := nanos(t)
	h.want.Store(w)
	// A later deadline, or none, needs no arming: the armed one fires first and the call
	// resumes (resume). The store above and the load below pair with rearm's, so that a
	// deadline set while rearm arms another is seen by one of them.
	if later(w, h.armed.Load()) {
		return nil
	}
	_, err := h.rearm(arm, later)
	return err
}

// resume reports whether err is the armed deadline firing before the one asked for; it
// then arms the one asked for, and the call is made again.
func (h *half) resume(err error, arm func(time.Time) error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	now := time.Now().UnixNano()
	armed, err := h.rearm(arm, func(w, _ int64) bool { return w != 0 && now >= w })
	return armed && err == nil
}

// rearm arms the deadline asked for, unless keep says the armed one stays, and again if
// another was asked for meanwhile. It reports whether it armed.
func (h *half) rearm(arm func(time.Time) error, keep func(want, armed int64) bool) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		w := h.want.Load()
		if keep(w, h.armed.Load()) {
			return false, nil
		}
		if err := arm(instant(w)); err != nil {
			return false, err
		}
		h.armed.Store(w)
		if h.want.Load() == w {
			return true, nil
		}
	}
}

// Read implements net.Conn.
func (c *Conn) Read(b []byte) (int, error) {
	for {
		n, err := c.Conn.Read(b)
		if n > 0 && c.idle != nil {
			c.idle.answered = true
			if c.plain {
				c.idle.answer.read(b[:n])
			}
		}
		if n > 0 || err == nil || !c.read.resume(err, c.Conn.SetReadDeadline) {
			return n, err
		}
	}
}

// Write implements net.Conn.
func (c *Conn) Write(b []byte) (int, error) {
	if c.idle != nil {
		if err := c.idle.sending(); err != nil {
			return 0, err
		}
	}
	written := 0
	for {
		n, err := c.Conn.Write(b[written:])
		written += n
		if err == nil || !c.write.resume(err, c.Conn.SetWriteDeadline) {
			return written, err
		}
	}
}

// SetDeadline implements net.Conn.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline implements net.Conn.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.read.set(t, c.Conn.SetReadDeadline) }

// SetWriteDeadline implements net.Conn.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.write.set(t, c.Conn.SetWriteDeadline) }

// Dial dials with fasthttp's TCP dialer (its DNS cache; no timeout: fasthttp's default), over
// IPv4 or IPv6, and returns a Conn that checks itself after idling (ErrStale): it is a
// plain-HTTP HostClient's DialTimeout.
func Dial(addr string, timeout time.Duration) (net.Conn, error) {
	lc, err := dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	lc.checkIdle()
	lc.plain = true
	return lc, nil
}

// DialTLS returns an https HostClient's DialTimeout: it dials as Dial does and makes the
// TLS handshake with cfg within handshake (no bound when 0), so fasthttp does not make it
// again. The Conn under the TLS one checks itself after idling, from the end of the
// handshake on: the handshake's own reads and writes are not requests.
func DialTLS(cfg *tls.Config, handshake time.Duration) func(string, time.Duration) (net.Conn, error) {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		lc, err := dial(addr, timeout)
		if err != nil {
			return nil, err
		}
		tc := tls.Client(lc, cfg)
		ctx := context.Background()
		if handshake > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, handshake)
			defer cancel()
		}
		if err := tc.HandshakeContext(ctx); err != nil {
			lc.Close()
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, fasthttp.ErrTLSHandshakeTimeout
			}
			return nil, err
		}
		lc.checkIdle()
		if lc.idle == nil {
			return tc, nil
		}
		// The answers are read in the clear above the TLS connection. fasthttp takes any
		// connection with a Handshake method for one that made its handshake.
		return &tlsConn{Conn: tc, answer: &lc.idle.answer}, nil
	}
}

// tlsConn is a dialed TLS connection whose answers its Conn below reads for a 101.
type tlsConn struct {
	*tls.Conn
	answer *answerHead
}

// Read implements net.Conn.
func (c *tlsConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.answer.read(b[:n])
	}
	return n, err
}

// dial dials both IPv4 and IPv6 addresses: fasthttp's Dial knows only IPv4, and an upstream
// at [::1] or at a name with only AAAA records would never be reached.
func dial(addr string, timeout time.Duration) (*Conn, error) {
	var c net.Conn
	var err error
	if timeout > 0 {
		c, err = fasthttp.DialDualStackTimeout(addr, timeout)
	} else {
		c, err = fasthttp.DialDualStack(addr)
	}
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}

// checkIdle turns the idle check on, where the connection can be peeked at.
func (c *Conn) checkIdle() {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.idle = &idleCheck{raw: raw, peek: peerGone, born: time.Now(), answer: answerHead{fresh: true}}
		}
	}
}

// Listener is a net.Listener whose connections are Conns.
type Listener struct{ net.Listener }

// Accept implements net.Listener.
func (l Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Wrap(c), nil
}
