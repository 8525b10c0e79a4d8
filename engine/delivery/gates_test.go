package delivery

import (
	"io"
	"log/slog"
	"testing"
	"time"
)

// A destination's breaker opens after BreakerThreshold failures in a row, admits nothing
// while open, lets exactly one probe through per cool-down (half-open), opens again at once
// when the probe fails, and closes when one is answered.
func TestBreakerHalfOpen(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	gs := gates{m: map[Destination]*gate{}, cooldown: time.Minute}
	dest, tg := Destination{Route: "r"}, &Target{}
	now := time.Unix(1e9, 0)
	step := func(failed bool) {
		t.Helper()
		if !gs.admit(dest, tg, now) {
			t.Fatalf("at %v: not admitted", now)
		}
		gs.done(dest, failed, now, log)
	}
	isOpen := func() bool { return len(gs.openDests()) == 1 }
	for i := 1; i < BreakerThreshold; i++ {
		step(true)
	}
	if isOpen() {
		t.Fatalf("open after %d failures, want %d", BreakerThreshold-1, BreakerThreshold)
	}
	step(false) // an answer resets the count
	for range BreakerThreshold {
		step(true)
	}
	if !isOpen() || gs.admit(dest, tg, now.Add(59*time.Second)) || len(gs.closed(now)) != 1 {
		t.Fatal("open breaker: an attempt admitted within the cool-down")
	}
	now = now.Add(time.Minute)
	if !gs.admit(dest, tg, now) {
		t.Fatal("after the cool-down: the probe not admitted")
	}
	if gs.admit(dest, tg, now) {
		t.Fatal("half-open: a second attempt admitted beside the probe")
	}
	gs.done(dest, true, now, log) // the probe fails: open again, for a whole cool-down
	if !isOpen() || gs.admit(dest, tg, now.Add(time.Second)) {
		t.Fatal("a failed probe did not open the breaker again")
	}
	now = now.Add(time.Minute)
	step(false) // the next probe is answered: closed
	if isOpen() || len(gs.closed(now)) != 0 {
		t.Fatal("an answered probe did not close the breaker")
	}
	for range 3 {
		step(false)
	}
}
