package gateway

import (
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// A queued route's destinations are dialled with lazily armed deadlines, as the routes'
// upstreams are: fasthttp moves both later at every attempt.
func TestDestinationConnectionsArmDeadlinesLazily(t *testing.T) {
	var dc destClients
	hc, _, _, _, err := dc.get("http://127.0.0.1:9/in", time.Second, 1<<20, "")
	if err != nil {
		t.Fatal(err)
	}
	testutil.DialsLazily(t, hc.DialTimeout)
}
