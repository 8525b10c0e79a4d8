package watch

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/redistest"
	stateredis "github.com/hookwall/hookwall/engine/state/redis"
)

// flush empties the fake fleet the way FLUSHALL (or a restart without persistence) empties
// Redis: records and version gone.
func (f *gatedFleet) flush() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m = map[string][]byte{}
	f.v = 0
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func refused(w *Watcher, src string) bool {
	_, refuse, _ := w.Blocked(src, time.Now())
	return refuse
}

// holdsFor reports whether cond holds at every check for d.
func holdsFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// TestFleetLossKeepsBlocks: the fleet loses every record (Redis restarted without
// persistence, or flushed). The gateway that placed a block keeps refusing the source and
// writes the block again; the other gateway, which dropped it with its record, gets it back.
func TestFleetLossKeepsBlocks(t *testing.T) {
	f := newGatedFleet(false)
	a, b := newFleetWatcher(t, f), newFleetWatcher(t, f)
	const src = "198.51.100.20"
	burstFrom(a, src, time.Now())
	if !waitFor(5*time.Second, func() bool { return f.has(src) && refused(b, src) }) {
		t.Fatal("the block never reached the fleet and the other gateway")
	}
	f.flush()
	if !holdsFor(time.Second, func() bool { return refused(a, src) }) {
		t.Fatal("the gateway that placed the block let the source through after the fleet lost its record")
	}
	if !waitFor(2*time.Second, func() bool { return f.has(src) && refused(b, src) }) {
		t.Fatalf("after the loss: record in the fleet %v, other gateway refuses %v; want both", f.has(src), refused(b, src))
	}
	// A lift at the other gateway still reaches the one that placed the block, and stays.
	if found, err := b.Lift(t.Context(), src); !found || err != nil {
		t.Fatalf("Lift at B: found=%v err=%v", found, err)
	}
	if !waitFor(time.Second, func() bool { return !refused(a, src) }) {
		t.Fatal("A kept the block lifted at B")
	}
	if !holdsFor(time.Second, func() bool { return !refused(a, src) && !refused(b, src) && !f.has(src) }) {
		t.Fatal("the lifted block came back")
	}
	if found, err := a.Lift(t.Context(), src); found || err != nil {
		t.Fatalf("lifting it again at A: found=%v err=%v, want not found", found, err)
	}
	// A new anomaly after the lift blocks the source again, everywhere.
	burstFrom(a, src, time.Now().Add(3*time.Minute)) // a later window: the anomaly is raised again
	if !waitFor(2*time.Second, func() bool { return f.has(src) && refused(b, src) && refused(a, src) }) {
		t.Fatal("a block placed after the lift did not replace the lift's record")
	}
}

// TestFleetRedisRestartKeepsBlocks: the same on a real redis-server restarted without
// persistence, and a lift across gateways on it.
func TestFleetRedisRestartKeepsBlocks(t *testing.T) {
	rs := redistest.Start(t)
	store := func() *stateredis.Store {
		s, err := stateredis.New(stateredis.Options{URL: rs.URL(), Timeout: time.Second, Prefix: "watch-loss:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	sa, sb := store(), store()
	a, b := newFleetWatcher(t, sa), newFleetWatcher(t, sb)
	inRedis := func(src string) bool {
		all, err := sa.Blocks(t.Context())
		if err != nil {
			return false
		}
		var rec struct {
			Source      string
			LiftedUntil string `json:"lifted_until"`
		}
		return json.Unmarshal(all[src], &rec) == nil && rec.Source == src && rec.LiftedUntil == "" // a block, not a lift
	}
	const src, other = "198.51.100.77", "198.51.100.78"
	burstFrom(a, src, time.Now())
	burstFrom(b, other, time.Now())
	if !waitFor(5*time.Second, func() bool { return inRedis(src) && inRedis(other) && refused(b, src) && refused(a, other) }) {
		t.Fatal("the blocks never reached Redis and the other gateway")
	}
	rs.Restart() // no persistence: every record and the version are gone
	if !holdsFor(time.Second, func() bool { return refused(a, src) && refused(b, other) }) {
		t.Fatal("a gateway let through the source it blocked after Redis restarted")
	}
	if !waitFor(5*time.Second, func() bool { return inRedis(src) && inRedis(other) && refused(b, src) && refused(a, other) }) {
		t.Fatalf("after the restart: in Redis %v %v, refused elsewhere %v %v; want all",
			inRedis(src), inRedis(other), refused(b, src), refused(a, other))
	}
	if found, err := b.Lift(t.Context(), src); !found || err != nil {
		t.Fatalf("Lift at B: found=%v err=%v", found, err)
	}
	if !waitFor(time.Second, func() bool { return !refused(a, src) }) {
		t.Fatal("A kept the block lifted at B")
	}
	if !holdsFor(time.Second, func() bool { return !refused(a, src) && !refused(b, src) && !inRedis(src) && refused(a, other) }) {
		t.Fatal("after the lift: the lifted block came back, or the other one went")
	}
}
