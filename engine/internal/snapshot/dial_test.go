package snapshot

import (
	"context"
	"testing"

	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/internal/testutil"
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
	var h Holder
	h.Swap(buildIn(t, host, t.TempDir(), "2s", guest(t, "tiny.wasm"), nil))
	defer h.Close()
	testutil.DialsLazily(t, h.Load().Routes[0].Client.DialTimeout)
}
