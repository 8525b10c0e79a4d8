package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The request context keeps context.WithTimeout's contract without its timer up front.
func TestDeadlineCtx(t *testing.T) {
	t.Run("expires", func(t *testing.T) {
		c := newDeadlineCtx(time.Now().Add(30 * time.Millisecond))
		if d, ok := c.Deadline(); !ok || time.Until(d) > 30*time.Millisecond {
			t.Fatalf("deadline %v %v", d, ok)
		}
		if c.Err() != nil {
			t.Fatal("err before the deadline")
		}
		done := c.Done()
		select {
		case <-done:
			t.Fatal("done before the deadline")
		default:
		}
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			t.Fatal("done not closed at the deadline")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("err %v after the deadline", c.Err())
		}
	})
	t.Run("expired without Done", func(t *testing.T) {
		c := newDeadlineCtx(time.Now().Add(time.Millisecond))
		time.Sleep(5 * time.Millisecond)
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Fatalf("err %v", c.Err())
		}
		select {
		case <-c.Done():
		default:
			t.Fatal("Done asked for after the deadline is not closed")
		}
	})
	t.Run("cancel", func(t *testing.T) {
		c := newDeadlineCtx(time.Now().Add(time.Hour))
		done := c.Done()
		c.cancel()
		c.cancel()
		select {
		case <-done:
		default:
			t.Fatal("done not closed by cancel")
		}
		if !errors.Is(c.Err(), context.Canceled) {
			t.Fatalf("err %v", c.Err())
		}
	})
	t.Run("children", func(t *testing.T) {
		// A call bounded by its own shorter timeout, and one bounded by the request's.
		c := newDeadlineCtx(time.Now().Add(40 * time.Millisecond))
		short, cancel := context.WithTimeout(c, 5*time.Millisecond)
		defer cancel()
		<-short.Done()
		if c.Err() != nil {
			t.Fatal("a child's timeout ended the parent")
		}
		long, cancel2 := context.WithTimeout(c, time.Hour)
		defer cancel2()
		select {
		case <-long.Done():
		case <-time.After(2 * time.Second):
			t.Fatal("a child did not end with the request's deadline")
		}
		if !errors.Is(long.Err(), context.DeadlineExceeded) {
			t.Fatalf("child err %v", long.Err())
		}
	})
}

// A pooled exchange renews its request context for the next request only when nothing asked
// the context for Done: a renewed one answers as a new one, and one that was waited on is
// left to its waiters, ended for good.
func TestDeadlineCtxRenewed(t *testing.T) {
	x := &exchange{}
	first := x.deadline(time.Now().Add(time.Hour))
	x.dc = first
	x.cancel()
	if !errors.Is(first.Err(), context.Canceled) || x.spareDC != first {
		t.Fatalf("ended: err %v, kept %v", first.Err(), x.spareDC == first)
	}

	want := time.Now().Add(40 * time.Millisecond)
	renewed := x.deadline(want)
	if renewed != first {
		t.Fatal("a context nothing waited on was not renewed")
	}
	if d, ok := renewed.Deadline(); !ok || !d.Equal(want) {
		t.Fatalf("renewed deadline %v %v, want %v", d, ok, want)
	}
	if renewed.Err() != nil {
		t.Fatalf("renewed context already ended: %v", renewed.Err())
	}
	done := renewed.Done()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("the renewed context did not expire at its own deadline")
	}
	if !errors.Is(renewed.Err(), context.DeadlineExceeded) {
		t.Fatalf("renewed context's err %v", renewed.Err())
	}
	x.dc = renewed
	x.cancel()
	if x.spareDC != nil {
		t.Fatal("a context asked for Done was kept for the next request")
	}

	next := x.deadline(time.Now().Add(time.Hour))
	if next == renewed || next.Err() != nil {
		t.Fatalf("after a waited-on context: same %v, err %v", next == renewed, next.Err())
	}
	select {
	case <-done:
	default:
		t.Fatal("the waited-on context's channel reopened")
	}
	if !errors.Is(renewed.Err(), context.DeadlineExceeded) {
		t.Fatalf("the waited-on context's err became %v", renewed.Err())
	}
}
