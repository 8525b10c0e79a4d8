package watch

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestFleetRefusalsCountedOnce: with the block table full, the fleet's records it has no
// room for are counted once each, not again at every pull that reads them.
func TestFleetRefusalsCountedOnce(t *testing.T) {
	f := newGatedFleet(false)
	now := time.Now()
	for n := 0; n < 50; n++ {
		raw, _ := json.Marshal(Block{Source: v6(n), Since: now, Until: now.Add(time.Hour), Strikes: 1, Gateway: "other"})
		_ = f.PutBlock(t.Context(), v6(n), raw)
	}
	w, err := New(Options{Config: watchConfig(t, "min_events = 3\nblock = true\nmax_blocks = 10\n"), Fleet: f,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor(2*time.Second, func() bool { return w.Stats().Blocks == 10 })
	time.Sleep(300 * time.Millisecond)
	for i := 0; i < 5; i++ {
		// another gateway's unrelated change bumps the version (a lift of some other address)
		raw, _ := json.Marshal(record{Block: Block{Source: "192.0.2.200", Since: time.Now(), Gateway: "other"}, LiftedUntil: time.Now().Add(time.Hour)})
		_ = f.PutBlock(t.Context(), "192.0.2.200", raw)
		time.Sleep(300 * time.Millisecond)
	}
	if st := w.Stats(); st.Blocks != 10 || st.BlocksRefused != 40 {
		t.Errorf("after 5 more pulls: %d blocks, %d refusals counted; want 10 and 40 (the 40 records with no room, once each)", st.Blocks, st.BlocksRefused)
	}
}
