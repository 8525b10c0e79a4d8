package filter

import (
	"context"
	"testing"
	"time"
)

// A guest that lets a GET through and spins forever on a POST, so that one instance can
// answer calls that arm its timer and then make a call that only the deadline ends.
const spinOnPostWAT = `(module
  (import "http_handler" "get_method" (func $get_method (param i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i64)
    (drop (call $get_method (i32.const 0) (i32.const 16)))
    (if (i32.eq (i32.load8_u (i32.const 0)) (i32.const 80)) ;; 'P'
      (then (loop $forever (br $forever))))
    (i64.const 1)))`

const postReq = "POST /hooks/x HTTP/1.1\r\nHost: example.com\r\nContent-Length: 0\r\n\r\n"

// spinInstance loads the spinOnPostWAT guest under timeout and acquires its one instance,
// released when the test ends.
func spinInstance(t *testing.T, timeout time.Duration) *Instance {
	t.Helper()
	f := load(t, newHost(t), Spec{Name: "spin", Module: wat(t, spinOnPostWAT), Timeout: timeout, Pool: 1})
	inst, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Release)
	return inst
}

// resetCount is how many times c's timer has been armed.
func (c *callContext) resetCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.resets
}

// backstop ends c's active call after a while, as the deadline would, and fails the test:
// a timer that never fires must fail the test, not leave a guest spinning until the test
// binary exits.
func backstop(t *testing.T, c *callContext, after time.Duration) *time.Timer {
	return time.AfterFunc(after, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.active && !c.expired.Load() {
			t.Errorf("the call still ran %v after it started: its deadline never fired (ended by the test)", after)
			c.expired.Store(true)
			close(c.done)
		}
	})
}

// Calls with the same timeout each have a later deadline than the one armed: the first
// call arms the timer and the rest leave it as it is.
func TestCallTimerArmedOnceForLaterDeadlines(t *testing.T) {
	h := newHost(t)
	f := load(t, h, Spec{Name: "tiny", Module: testdata(t, "tiny.wasm"), Timeout: time.Minute, Pool: 1, MaxUses: 1 << 30})
	ex, _, _ := newExchange(t, getReq)
	const calls = 100
	for range calls {
		serve(t, f, ex)
	}
	if st := f.Stats(); st.Created != 1 {
		t.Fatalf("stats %+v: the calls were not all made by one instance", st)
	}
	inst, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Release()
	if n := inst.cctx.resetCount(); n != 1 {
		t.Errorf("%d calls armed the timer %d times, want once", calls, n)
	}
}

// A call whose deadline (its caller's) comes before the one the timer is armed for, by
// earlier calls under the filter's long timeout, re-arms it: the guest is stopped at the
// call's own deadline, not the armed one.
func TestCallTimerArmsAnEarlierDeadline(t *testing.T) {
	const timeout = 10 * time.Second
	inst := spinInstance(t, timeout)
	get, _, _ := newExchange(t, getReq)
	for range 3 {
		if next, err := inst.HandleRequest(testCtx, get); err != nil || !next {
			t.Fatalf("GET: next %v, err %v", next, err)
		}
	}

	const short = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(testCtx, short)
	defer cancel()
	dl, _ := ctx.Deadline()
	defer backstop(t, &inst.cctx, 2*time.Second).Stop()
	post, _, _ := newExchange(t, postReq)
	start := time.Now()
	_, err := inst.HandleRequest(ctx, post)
	end := time.Now()
	wantKind(t, err, KindTimeout)
	// Not a tight bound: a busy machine may run the timer late, but a call that waited for
	// the armed deadline would run for seconds.
	if took := end.Sub(start); took > short+time.Second {
		t.Errorf("the guest was stopped after %v, want within about %v", took, short)
	}
	if end.Before(dl) {
		t.Errorf("the guest was stopped %v before its deadline", dl.Sub(end))
	}
}

// The timer armed for an earlier call's short deadline (its caller's) fires during a later
// call with a longer one, which did not re-arm it: the fire re-arms for the rest, and the
// later call is stopped at its own deadline, not before and not never.
func TestCallTimerRearmsAfterAnEarlyFire(t *testing.T) {
	const timeout = 300 * time.Millisecond
	inst := spinInstance(t, timeout)
	c := &inst.cctx
	get, _, _ := newExchange(t, getReq)

	const short = 100 * time.Millisecond
	ready := false
	for range 3 {
		ctx, cancel := context.WithTimeout(testCtx, short)
		dl, _ := ctx.Deadline()
		next, err := inst.HandleRequest(ctx, get)
		cancel()
		if err != nil || !next {
			t.Fatalf("GET: next %v, err %v", next, err)
		}
		c.mu.Lock()
		armedFor := c.armedFor
		c.mu.Unlock()
		if !armedFor.Equal(dl) {
			t.Fatalf("the timer is armed for %v, want the short call's deadline %v", armedFor, dl)
		}
		// The next call must start well before the short deadline fires, or there is no
		// early fire to test; a busy machine may need another try.
		if time.Until(dl) > short/2 {
			ready = true
			break
		}
		// Try again once the short deadline has fired and left the timer unarmed.
		for wait := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			c.mu.Lock()
			unarmed := c.armedFor.IsZero()
			c.mu.Unlock()
			if unarmed {
				break
			}
			if time.Now().After(wait) {
				t.Fatal("the timer armed for a past deadline did not fire")
			}
		}
	}
	if !ready {
		t.Skip("the machine is too busy to start a call within the short deadline")
	}

	before := c.resetCount()
	defer backstop(t, c, 3*time.Second).Stop()
	post, _, _ := newExchange(t, postReq)
	start := time.Now()
	_, err := inst.HandleRequest(testCtx, post)
	took := time.Since(start)
	wantKind(t, err, KindTimeout)
	if took < timeout {
		t.Errorf("the guest was stopped after %v, before its %v deadline", took, timeout)
	}
	if took > timeout+time.Second {
		t.Errorf("the guest was stopped after %v, want about %v", took, timeout)
	}
	if n := c.resetCount() - before; n != 1 {
		t.Errorf("the timer was armed %d times during the call, want once (by the early fire)", n)
	}
}
