package gateway

import (
	"net"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/lazyconn"
)

// A queued route's destinations are dialled with lazily armed deadlines, as the routes'
// upstreams are: fasthttp moves both later at every attempt.
func TestDestinationConnectionsArmDeadlinesLazily(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var dc destClients
	hc, _, _, _, err := dc.get("http://"+ln.Addr().String()+"/in", time.Second, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if hc.DialTimeout == nil {
		t.Fatal("the destination's client dials with fasthttp's default dialer")
	}
	c, err := hc.DialTimeout(ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*lazyconn.Conn); !ok {
		t.Fatalf("the destination's client dials a %T, want a *lazyconn.Conn", c)
	}
}
