package server

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookwall/hookwall/engine/policy"
)

// deadlineCtx is a request's context: a deadline and a cancel, as context.WithTimeout gives,
// except that its channel and timer are made only when something asks for Done. The policy,
// the filters and the memory state store only read Deadline and Err, so most requests never
// pay for a timer; a Redis call that selects on Done gets a correct one.
//
// Contract (context.Context): Err is nil until the deadline passes or cancel is called, then
// DeadlineExceeded or Canceled for good; Done, once asked for, is closed at that moment, and
// if asked for later it is already closed.
type deadlineCtx struct {
	deadline time.Time
	// sens is what Value answers for policy.SensitiveKey: the credentials the policy's
	// builtins were handed, for the decision log's mask.
	sens *policy.Sensitive

	mu    sync.Mutex
	done  chan struct{}
	timer *time.Timer
	err   error
	ended atomic.Bool // err is set; read without mu by Err
}

// newDeadlineCtx returns a context ending at deadline, which the caller computes from a clock
// reading it has already (the request's arrival, the upstream's answer).
func newDeadlineCtx(deadline time.Time) *deadlineCtx {
	return &deadlineCtx{deadline: deadline}
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Value(key any) any {
	if _, ok := key.(policy.SensitiveKey); ok && c.sens != nil {
		return c.sens
	}
	return nil
}

// Err is asked on the request path (the policy's evaluation, each guest call): while the
// context has not ended and its deadline is ahead it answers without the lock, and
// time.Until reads only the monotonic clock (the deadline carries a reading of it).
func (c *deadlineCtx) Err() error {
	if !c.ended.Load() && time.Until(c.deadline) > 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil && time.Until(c.deadline) <= 0 {
		c.finishLocked(context.DeadlineExceeded)
	}
	return c.err
}

func (c *deadlineCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		switch {
		case c.err != nil:
			close(c.done)
		case time.Until(c.deadline) <= 0:
			c.finishLocked(context.DeadlineExceeded)
		default:
			c.timer = time.AfterFunc(time.Until(c.deadline), c.expire)
		}
	}
	return c.done
}

func (c *deadlineCtx) expire() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.finishLocked(context.DeadlineExceeded)
	}
}

// cancel ends the context early (the request is over); it is idempotent.
func (c *deadlineCtx) cancel() { c.end() }

// end is cancel, and reports whether c may be renewed for another request: nothing asked it
// for Done, so it has no timer that may yet fire and no channel a select may yet hold. The
// request path hands its context only to calls that return before the request ends (the
// filters, the policy, the state store); one that keeps waiting on it past its call does so
// on Done.
func (c *deadlineCtx) end() (renewable bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.finishLocked(context.Canceled)
	}
	return c.done == nil
}

// renew makes c, ended and renewable (end), a new context ending at deadline.
func (c *deadlineCtx) renew(deadline time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deadline, c.err = deadline, nil
	c.ended.Store(false)
}

// finishLocked ends the context with err: Err answers it from now on, Done's channel (if one
// was made) is closed and its timer stopped. c.mu must be held, and c.err must be nil: every
// caller (Err, Done, expire, cancel) locks and checks first.
func (c *deadlineCtx) finishLocked(err error) {
	c.err = err
	c.ended.Store(true)
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
}
