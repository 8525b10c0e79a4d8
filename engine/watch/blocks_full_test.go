package watch

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects a logger's output from any goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBlockTableFullKeepsBlocksAndWarnsOnce: with max_blocks = 1000 and 3,000 anomalous
// addresses, the first 1,000 stay blocked and the rest are raised (Blocked false), counted
// and warned about once; blocks that end make room again, and strikes stay within 2 ×
// max_blocks however many rounds pass.
func TestBlockTableFullKeepsBlocksAndWarnsOnce(t *testing.T) {
	var logs lockedBuffer
	w, err := New(Options{Config: watchConfig(t, "min_events = 3\nblock = true\nblock_for = \"10m\"\nmax_blocks = 1000\nmax_sources = 1024\n"),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for n := 0; n < 3000; n++ {
		burstFrom(w, v6(n), now)
	}
	st := w.Stats()
	if st.Blocks != 1000 || st.BlocksRefused != 2000 || st.BlockCapacity != 1000 {
		t.Fatalf("stats %+v: want 1000 blocks, 2000 refused, capacity 1000", st)
	}
	ip := byScope(w.Status(now).Recent)[ScopeIP]
	if len(ip) == 0 || ip[0].Source != v6Key(2999) || ip[0].Blocked || ip[0].BlockedUntil != nil {
		t.Fatalf("the last anomaly, refused a block: %+v", ip[0])
	}
	for _, n := range []int{0, 999} {
		if _, refuse, _ := w.Blocked(v6(n), now); !refuse {
			t.Fatalf("%s, blocked before the table filled, is not refused", v6(n))
		}
	}
	for _, n := range []int{1000, 2999} {
		if _, refuse, marked := w.Blocked(v6(n), now); refuse || marked {
			t.Fatalf("%s, past max_blocks, is blocked", v6(n))
		}
	}
	if n := strings.Count(logs.String(), "block table full"); n != 1 {
		t.Fatalf("%d warnings that the table is full, want 1 (at most one a minute):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "max_blocks=1000") {
		t.Fatalf("the warning does not name max_blocks:\n%s", logs.String())
	}
	// Rounds of 1,000 new addresses, each after the last round's blocks ended: every round
	// blocks all of them, and the strikes kept (each lasts max_block_for past its block)
	// stay bounded.
	for round := 1; round <= 4; round++ {
		now = now.Add(11 * time.Minute)
		w.blocks.expire(now)
		for n := 0; n < 1000; n++ {
			burstFrom(w, v6(round*100000+n), now)
		}
		if st := w.Stats(); st.Blocks != 1000 {
			t.Fatalf("round %d: %d blocks, want 1000", round, st.Blocks)
		}
		if n := len(w.blocks.strikes); n > 2000 {
			t.Fatalf("round %d: %d strikes kept, want at most 2 × max_blocks", round, n)
		}
	}
	// The newest blocks kept their strikes; a repeat doubles.
	now = now.Add(11 * time.Minute)
	w.blocks.expire(now)
	burstFrom(w, v6(4*100000+7), now)
	if secs, refuse, _ := w.Blocked(v6(4*100000+7), now); !refuse || secs != 1200 {
		t.Fatalf("a repeat after the table was full: retry %d refuse %v, want 1200s", secs, refuse)
	}
}

// TestFleetBlocksCountTowardMaxBlocks: blocks read from the fleet take room in the table as
// the gateway's own do: past max_blocks they are counted (once each, whatever the pulls
// that read them again), not held.
func TestFleetBlocksCountTowardMaxBlocks(t *testing.T) {
	f := newGatedFleet(false)
	now := time.Now()
	for n := 0; n < 50; n++ {
		raw, _ := json.Marshal(Block{Source: v6(n), Since: now, Until: now.Add(time.Hour), Strikes: 1, Gateway: "other"})
		_ = f.PutBlock(t.Context(), v6(n), raw)
	}
	w := runFleetWatcher(t, f, "min_events = 3\nblock = true\nmax_blocks = 10\n")
	if !waitFor(2*time.Second, func() bool { return w.Stats().Blocks == 10 }) {
		t.Fatalf("stats %+v: want the first 10 of the fleet's 50 blocks held", w.Stats())
	}
	time.Sleep(300 * time.Millisecond)
	for range 5 {
		// Another gateway's unrelated change (a lift of another address): a pull reads
		// every record again, and the 40 with no room are counted once each, not per pull.
		raw, _ := json.Marshal(record{Block: Block{Source: "192.0.2.200", Since: time.Now(), Gateway: "other"}, LiftedUntil: time.Now().Add(time.Hour)})
		_ = f.PutBlock(t.Context(), "192.0.2.200", raw)
		time.Sleep(300 * time.Millisecond)
	}
	if st := w.Stats(); st.Blocks != 10 || st.BlocksRefused != 40 || len(w.blocks.m) != 10 {
		t.Fatalf("stats %+v, %d held: want 10 held, 40 refused", st, len(w.blocks.m))
	}
	burstFrom(w, "198.51.100.30", now)
	if refused(w, "198.51.100.30") {
		t.Fatal("a block placed past max_blocks")
	}
}
