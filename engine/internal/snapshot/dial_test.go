package snapshot

import (
	"testing"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// A route's upstream connections arm their deadlines lazily: fasthttp moves both later
// for every request it forwards (engine/gateway's TestStalledUpstreamEndsAtTheRouteTimeout
// checks that the route's timeout still holds).
func TestUpstreamConnectionsArmDeadlinesLazily(t *testing.T) {
	var h Holder
	h.Swap(buildIn(t, newHost(t), t.TempDir(), "2s", guest(t, "tiny.wasm"), nil))
	defer h.Close()
	testutil.DialsLazily(t, h.Load().Routes[0].Client.DialTimeout)
}
