package delivery

import (
	"context"
	"testing"
	"time"
)

// A worker records its attempts under one context while at least half of finishTimeout is
// left on it: every Finish is bounded, and given at least half of the bound.
func TestRecordContextBoundsEveryFinish(t *testing.T) {
	var w exchange
	defer w.endRecord()
	now := time.Now()
	first := w.recordCtx(now)
	if dl, ok := first.Deadline(); !ok || !dl.Equal(now.Add(finishTimeout)) {
		t.Fatalf("deadline %v %v, want %v", dl, ok, now.Add(finishTimeout))
	}
	if w.recordCtx(now.Add(finishTimeout/2-time.Millisecond)) != first {
		t.Error("a context with more than half of its time left was replaced")
	}
	later := now.Add(finishTimeout/2 + time.Millisecond)
	second := w.recordCtx(later)
	if second == first {
		t.Fatal("a context with less than half of its time left was used again")
	}
	if dl, _ := second.Deadline(); !dl.Equal(later.Add(finishTimeout)) {
		t.Errorf("renewed deadline %v, want %v", dl, later.Add(finishTimeout))
	}
	if first.Err() != context.Canceled {
		t.Errorf("the replaced context's timer was not released: %v", first.Err())
	}
}
