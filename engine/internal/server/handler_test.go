package server

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestIDAndPeer: the decision id and the peer's text made in one allocation are what
// sequentialDecisionID and net.IP's String give, for every form a TCP peer's address takes.
func TestIDAndPeer(t *testing.T) {
	s := New(Options{})
	for _, ip := range []net.IP{
		net.IPv4(127, 0, 0, 1), net.IPv4(203, 0, 113, 9).To4(), net.ParseIP("::1"), net.ParseIP("2001:db8::17"),
		net.ParseIP("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), net.ParseIP("::ffff:198.51.100.7"), net.IP{1, 2, 3}, nil,
	} {
		var ctx fasthttp.RequestCtx
		ctx.Init(&fasthttp.Request{}, &net.TCPAddr{IP: ip, Port: 4000}, nil)
		var buf [32]byte
		id, peer := s.idAndPeer(&ctx, &buf)
		if want := ip.String(); peer != want {
			t.Errorf("peer %q, want %q", peer, want)
		}
		var idBuf [32]byte
		if next := s.sequentialDecisionID(&idBuf); len(id) != 32 || id[:16] != next[:16] || id >= next {
			t.Errorf("decision id %q, then %q", id, next)
		}
	}
}
