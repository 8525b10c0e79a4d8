package snapshot

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/internal/lazyconn"
)

// A route's upstream connections arm their deadlines lazily: fasthttp moves both later
// for every request it forwards (engine/gateway's TestStalledUpstreamEndsAtTheRouteTimeout
// checks that the route's timeout still holds).
func TestUpstreamConnectionsArmDeadlinesLazily(t *testing.T) {
	ctx := context.Background()
	host, err := filter.NewHost(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close(ctx)
	s := buildIn(t, host, t.TempDir(), "2s", guest(t, "tiny.wasm"), nil)
	var h Holder
	h.Swap(s)
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dial := s.Routes[0].Client.DialTimeout
	if dial == nil {
		t.Fatal("the route's client dials with fasthttp's default dialer")
	}
	c, err := dial(ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*lazyconn.Conn); !ok {
		t.Fatalf("the route's client dials a %T, want a *lazyconn.Conn", c)
	}
}
