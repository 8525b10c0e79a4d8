//go:build !race

package memory

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/state"
)

// Admit with both obligations, then Commit, allocates nothing once the maps and the arena
// have grown to the working set, on the store and behind state.Bound (short keys pass it
// unchanged).
func TestAdmitAllocations(t *testing.T) {
	for name, s := range map[string]state.Store{
		"store": New(Options{MaxKeys: 4096, Now: tickClock()}),
		"bound": state.Bound(New(Options{MaxKeys: 4096, Now: tickClock()})),
	} {
		t.Run(name, func(t *testing.T) { testAdmitAllocations(t, s) })
	}
}

func testAdmitAllocations(t *testing.T, s state.Store) {
	keys := make([]string, 8192)
	for i := range keys {
		keys[i] = "delivery-" + strconv.Itoa(i)
	}
	ctx := context.Background()
	c := state.Check{RateLimit: state.RateLimit{Key: "sender", Limit: 1 << 30, Per: time.Second}, Dedupe: state.Dedupe{TTL: time.Millisecond}}
	i := 0
	step := func() {
		c.Dedupe.Key = keys[i%len(keys)]
		i++
		if a, err := s.Admit(ctx, &c); err != nil || a.Dedupe != state.DedupeNew {
			t.Fatalf("%+v %v", a, err)
		}
		if err := s.Commit(ctx, c.Dedupe.Key, time.Millisecond); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 * len(keys) { // warm: maps, arenas and free lists at their working size
		step()
	}
	if n := testing.AllocsPerRun(5000, step); n != 0 {
		t.Fatalf("Admit+Commit: %v allocs per request, want 0", n)
	}
}
