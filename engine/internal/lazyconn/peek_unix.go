//go:build unix

package lazyconn

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// peerGone peeks at the socket without blocking. An idle connection of a request-response
// protocol has nothing to read: the end of the stream means the peer closed it, an error
// means it reset it, and bytes mean it sent something that no request asked for (a TLS
// close_notify before it closes, or a stray answer that would be read as the next one's).
// Only "nothing yet" leaves the connection usable.
func peerGone(raw syscall.RawConn) bool {
	var buf [1]byte
	gone := true
	err := raw.Read(func(fd uintptr) bool {
		_, _, rerr := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		gone = rerr != unix.EAGAIN && rerr != unix.EWOULDBLOCK && rerr != unix.EINTR
		return true
	})
	return gone || err != nil
}
