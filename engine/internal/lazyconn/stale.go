package lazyconn

import (
	"errors"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// ErrStale is what a dialed Conn's Write returns, having sent nothing, when the request it
// starts would go on a connection the peer closed, or sent bytes nobody asked for on, while
// it sat idle. Since nothing reached the peer, the request may be sent again on another
// connection, whatever its method: the route and delivery clients do that for this error
// and no other.
var ErrStale = errors.New("lazyconn: the idle connection was closed by its peer, holds bytes no request asked for, or was switched to another protocol")

// IdleCheck is how long a dialed connection must have been idle for its next request to
// check it first. Servers close idle keep-alive connections after a timeout of their own
// (Node's default is 5 s), and fasthttp's pool does not notice. Under load
// connections come back within milliseconds and are not checked; the check is one
// non-blocking peek at the socket.
const IdleCheck = 10 * time.Millisecond

// idleCheck follows a dialed connection's requests: the first Write after a Read starts the
// next request. It is made once the connection is ready for requests (after a TLS
// handshake), and the connection carries one request at a time, so it needs no lock.
type idleCheck struct {
	raw      syscall.RawConn
	peek     func(syscall.RawConn) bool // peerGone; a test counts the peeks
	born     time.Time                  // the monotonic base of sent: time.Since(born) reads one clock a request, time.Now two
	sent     time.Duration              // since born, when the last request's first byte was written
	answered bool                       // a Read since then: the next Write starts a request
	answer   answerHead                 // the answer's status lines, for Switching Protocols
}

// sending is called before every Write; it checks the connection when the Write starts a
// request after an answer and the connection has been idle IdleCheck or longer.
func (k *idleCheck) sending() error {
	if k.answer.switched {
		return ErrStale
	}
	if !k.answered {
		return nil
	}
	k.answer.next()
	now := time.Since(k.born)
	// Measured from the last request's start (the connection's birth for its second), not
	// its answer's end: an idle time taken as longer than it was costs one peek, never a
	// missed check.
	idle := now - k.sent
	k.answered, k.sent = false, now
	if idle >= IdleCheck && k.peek(k.raw) {
		return ErrStale
	}
	return nil
}

// Configure sets how hc gets a connection for a request and when it sends one again: its
// connections are Conns (DialTLS's when hc.IsTLS, bounding the handshake by timeout; Dial's
// otherwise); a request that finds all MaxConns busy waits for one up to timeout, where
// fasthttp would refuse it at once (a 502 from an upstream that is only busy); and a request
// is sent again only after ErrStale, that is only when nothing of it was sent. Each such
// attempt closed one idle connection, so hc may try as many times as it holds connections,
// and one more, before it gives up: by then it has dialed a new one.
func Configure(hc *fasthttp.HostClient, timeout time.Duration) {
	if hc.IsTLS {
		hc.DialTimeout = DialTLS(hc.TLSConfig, timeout)
	} else {
		hc.DialTimeout = Dial
	}
	hc.MaxConnWaitTimeout = timeout
	hc.RetryIfErr = func(_ *fasthttp.Request, _ int, err error) (resetTimeout, retry bool) {
		return false, errors.Is(err, ErrStale)
	}
	n := hc.MaxConns
	if n <= 0 {
		n = fasthttp.DefaultMaxConnsPerHost
	}
	hc.MaxIdemponentCallAttempts = n + 1
}
