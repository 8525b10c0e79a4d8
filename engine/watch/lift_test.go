package watch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

// gatedFleet is an in-memory Fleet. With putGate set, each PutBlock of a block (not of a
// lift's record) reports on putSeen and then waits until putGate yields or closes before it
// writes.
type gatedFleet struct {
	mu      sync.Mutex
	m       map[string][]byte
	v       int64
	putGate chan struct{}
	putSeen chan struct{}
}

func newGatedFleet(gated bool) *gatedFleet {
	f := &gatedFleet{m: map[string][]byte{}}
	if gated {
		f.putGate, f.putSeen = make(chan struct{}), make(chan struct{}, 16)
	}
	return f
}

func (f *gatedFleet) PutBlock(ctx context.Context, s string, rec []byte) error {
	if f.putGate != nil && !bytes.Contains(rec, []byte(`"lifted_until"`)) {
		f.putSeen <- struct{}{}
		<-f.putGate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[s] = rec
	f.v++
	return nil
}

func (f *gatedFleet) DeleteBlock(ctx context.Context, s string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.m[s]
	delete(f.m, s)
	f.v++
	return ok, nil
}

func (f *gatedFleet) BlocksVersion(ctx context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.v, nil
}

func (f *gatedFleet) Blocks(ctx context.Context) (map[string][]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string][]byte, len(f.m))
	for k, v := range f.m {
		out[k] = v
	}
	return out, nil
}

// has reports whether the fleet holds a block of s (a lift's record is not one).
func (f *gatedFleet) has(s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	rec, ok := f.m[s]
	return ok && !bytes.Contains(rec, []byte(`"lifted_until"`))
}

func newFleetWatcher(t *testing.T, f Fleet) *Watcher {
	t.Helper()
	return runFleetWatcher(t, f, "min_events = 3\nblock = true\nblock_for = \"10m\"\n")
}

// runFleetWatcher runs a watcher of the [watch] keys body on the fleet f until the test ends.
func runFleetWatcher(t *testing.T, f Fleet, body string) *Watcher {
	t.Helper()
	w, err := New(Options{Config: watchConfig(t, body), Fleet: f,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// TestLiftAnySpellingOfAnAddress: a block is kept under the address's canonical text (an
// IPv6 client's under its /64), and lifting it by any other spelling of the same address
// (upper case, uncompressed, IPv4-mapped), by another address of the /64 or by the prefix
// itself lifts it, here and in the fleet.
func TestLiftAnySpellingOfAnAddress(t *testing.T) {
	for _, tc := range []struct{ blocked, lift, key string }{
		{"2001:db8::1", "2001:DB8::1", "2001:db8::/64"},
		{"2001:db8::1", "2001:db8:0:0:0:0:0:1", "2001:db8::/64"},
		{"2001:db8::1", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::/64"},
		{"2001:db8::1", "2001:db8::ffff:2", "2001:db8::/64"},
		{"2001:db8::1", "2001:db8:0::/64", "2001:db8::/64"},
		{"192.0.2.7", "::ffff:192.0.2.7", "192.0.2.7"},
		{"192.0.2.7", "::FFFF:c000:207", "192.0.2.7"},
		{"2001:db8::1", "2001:db8::1", "2001:db8::/64"},
		{"sender-x", "sender-x", "sender-x"}, // not an address: its text as is
	} {
		f := newGatedFleet(false)
		w := newFleetWatcher(t, f)
		now := time.Now()
		for i := 0; i < 3; i++ {
			w.Observe("r", tc.blocked, "denied", 0, forged, nil, now)
		}
		if _, refuse, _ := w.Blocked(tc.blocked, now); !refuse {
			t.Fatalf("%s: not blocked after the burst", tc.blocked)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !f.has(tc.key) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: never written to the fleet as %s", tc.blocked, tc.key)
			}
			time.Sleep(5 * time.Millisecond)
		}
		found, err := w.Lift(t.Context(), tc.lift)
		if err != nil || !found {
			t.Errorf("Lift(%q) of the block of %s: found=%v err=%v, want found", tc.lift, tc.blocked, found, err)
		}
		if _, refuse, _ := w.Blocked(tc.blocked, now); refuse {
			t.Errorf("Lift(%q): %s still refused", tc.lift, tc.blocked)
		}
		if f.has(tc.key) {
			t.Errorf("Lift(%q): the record of %s is still in the fleet", tc.lift, tc.key)
		}
		if found, err := w.Lift(t.Context(), tc.lift); found || err != nil {
			t.Errorf("Lift(%q) again: found=%v err=%v, want not found", tc.lift, found, err)
		}
	}
	// Without a fleet too.
	w := newTestWatcher(t, "min_events = 3\nblock = true\n")
	now := time.Now()
	for i := 0; i < 3; i++ {
		w.Observe("r", "2001:db8::2", "denied", 0, forged, nil, now)
	}
	if found, err := w.Lift(t.Context(), "2001:DB8:0::2"); !found || err != nil {
		t.Errorf("Lift(2001:DB8:0::2) without a fleet: found=%v err=%v", found, err)
	}
	if _, refuse, _ := w.Blocked("2001:db8::2", now); refuse {
		t.Error("2001:db8::2 still refused after its lift without a fleet")
	}
}

// TestLiftDuringPushStaysLifted: a lift that lands while the block's record is being
// written to the fleet is not undone by that write: after it completes the source is not
// refused and its record is not in the fleet.
func TestLiftDuringPushStaysLifted(t *testing.T) {
	f := newGatedFleet(true)
	w := newFleetWatcher(t, f)
	const src = "198.51.100.9"
	now := time.Now()
	for i := 0; i < 3; i++ {
		w.Observe("r", src, "denied", 0, forged, nil, now)
	}
	select {
	case <-f.putSeen: // the run loop marshalled the record and is writing it
	case <-time.After(5 * time.Second):
		t.Fatal("the block was never written to the fleet")
	}
	found, err := w.Lift(t.Context(), src)
	if !found || err != nil {
		t.Fatalf("Lift: found=%v err=%v", found, err)
	}
	close(f.putGate) // the write completes, after the lift
	// Let the run loop finish the push and pull the fleet a few times (every 250ms).
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if _, refuse, _ := w.Blocked(src, time.Now()); refuse {
			t.Fatalf("%s refused again %v after its lift", src, time.Since(deadline.Add(-time.Second)).Round(time.Millisecond))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if f.has(src) {
		t.Fatal("the lifted block's record is back in the fleet")
	}
	if n := len(w.Blocks(time.Now())); n != 0 {
		t.Fatalf("%d blocks after the lift, want 0", n)
	}
}

// pausingFleet is a gatedFleet whose reads of every block pause, from Arm on, at the calls
// numbered in pause (1 is the first read after Arm): each such read takes its copy of the
// fleet, reports its number on seen, and returns only once its channel closes.
type pausingFleet struct {
	*gatedFleet
	mu    sync.Mutex
	calls int
	pause map[int]chan struct{}
	seen  chan int
}

func (f *pausingFleet) Arm(calls ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls, f.pause, f.seen = 0, map[int]chan struct{}{}, make(chan int, len(calls))
	for _, n := range calls {
		f.pause[n] = make(chan struct{})
	}
}

func (f *pausingFleet) Blocks(ctx context.Context) (map[string][]byte, error) {
	out, err := f.gatedFleet.Blocks(ctx)
	f.mu.Lock()
	f.calls++
	ch := f.pause[f.calls]
	n := f.calls
	f.mu.Unlock()
	if ch != nil {
		f.seen <- n
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return out, err
}

// TestLiftDuringPullStaysLifted: a lift that lands while a pull is between its read of the
// fleet (which still holds the block's record) and applying what it read is not undone by
// that pull: the source is not refused again, and a second lift finds nothing.
func TestLiftDuringPullStaysLifted(t *testing.T) {
	f := &pausingFleet{gatedFleet: newGatedFleet(false)}
	w := newFleetWatcher(t, f)
	const src = "198.51.100.23"
	now := time.Now()
	for i := 0; i < 3; i++ {
		w.Observe("r", src, "denied", 0, forged, nil, now)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !f.has(src) {
		if time.Now().After(deadline) {
			t.Fatal("the block was never written to the fleet")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The next pull (read 1) pauses with the block's record in hand; the lift's own read
	// (2) does not; the pull after it (3) pauses too, so that what read 1 applied stays
	// in force while the test looks.
	f.Arm(1, 3)
	waitRead := func(n int) {
		t.Helper()
		select {
		case got := <-f.seen:
			if got != n {
				t.Fatalf("read %d paused, want %d", got, n)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("read %d of the fleet never came", n)
		}
	}
	// A change to the fleet's version, so the run loop pulls at its next tick.
	other, _ := json.Marshal(record{Block: Block{Source: "203.0.113.99", Since: now, Until: now.Add(time.Hour), Gateway: "other"}})
	if err := f.gatedFleet.PutBlock(t.Context(), "203.0.113.99", other); err != nil {
		t.Fatal(err)
	}
	waitRead(1)
	if found, err := w.Lift(t.Context(), src); !found || err != nil {
		t.Fatalf("Lift: found=%v err=%v, want found", found, err)
	}
	close(f.pause[1])
	waitRead(3)
	defer close(f.pause[3])
	if _, refuse, _ := w.Blocked(src, time.Now()); refuse {
		t.Errorf("%s refused again: the pull that read the fleet before the lift applied the block it lifted", src)
	}
	if found, err := w.Lift(t.Context(), src); found || err != nil {
		t.Errorf("Lift again: found=%v err=%v, want not found", found, err)
	}
	if _, refuse, _ := w.Blocked("203.0.113.99", time.Now()); !refuse {
		t.Error("the other gateway's block, read by the same pull, is not in force")
	}
}

// TestIPv6ClientsAreWatchedByPrefix: a host holds a whole /64, so an IPv6 client's refusals
// count, and its block holds, for its /64: the next address of it is refused too, another
// /64 is not. ipv6_prefix = 128 watches each address apart; a never_block address inside
// the /64 keeps the /64 from being blocked. Looking a block up allocates nothing.
func TestIPv6ClientsAreWatchedByPrefix(t *testing.T) {
	now := time.Now()
	burst := func(w *Watcher, ip string) {
		for i := 0; i < 3; i++ {
			w.Observe("r", ip, "denied", 0, forged, nil, now)
		}
	}
	refused := func(w *Watcher, ip string) bool {
		_, refuse, _ := w.Blocked(ip, now)
		return refuse
	}

	w := newTestWatcher(t, "min_events = 3\nblock = true\n")
	burst(w, "2001:db8:1:2::1")
	for ip, want := range map[string]bool{"2001:db8:1:2::1": true, "2001:db8:1:2:aaaa:bbbb:cccc:dddd": true, "2001:db8:1:3::1": false, "192.0.2.1": false} {
		if got := refused(w, ip); got != want {
			t.Errorf("after a burst from 2001:db8:1:2::1: %s refused %v, want %v", ip, got, want)
		}
	}
	if bl := w.Blocks(now); len(bl) != 1 || bl[0].Source != "2001:db8:1:2::/64" {
		t.Errorf("blocks %+v, want one of 2001:db8:1:2::/64", bl)
	}
	if a := testing.AllocsPerRun(100, func() { refused(w, "2001:db8:1:2::7") }); a != 0 {
		t.Errorf("looking up an IPv6 client's block allocates %.0f", a)
	}

	// Refusals spread over one /64 add up.
	w = newTestWatcher(t, "min_events = 3\nblock = true\n")
	for i := range 3 {
		w.Observe("r", fmt.Sprintf("2001:db8:9:9::%x", i+1), "denied", 0, forged, nil, now)
	}
	if !refused(w, "2001:db8:9:9::99") {
		t.Error("three forgeries from three addresses of one /64 did not block it")
	}

	w = newTestWatcher(t, "min_events = 3\nblock = true\nipv6_prefix = 128\n")
	burst(w, "2001:db8:1:2::1")
	if !refused(w, "2001:db8:1:2::1") || refused(w, "2001:db8:1:2::2") {
		t.Error("ipv6_prefix = 128: the burst's address must be blocked alone")
	}

	w = newTestWatcher(t, "min_events = 3\nblock = true\nnever_block = [\"2001:db8:1:2::9\"]\n")
	burst(w, "2001:db8:1:2::1")
	if refused(w, "2001:db8:1:2::9") || refused(w, "2001:db8:1:2::1") {
		t.Error("a /64 holding a never_block address was blocked")
	}
}
