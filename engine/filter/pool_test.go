package filter

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// TestPoolGrowsOnDemandAndShrinksWhenIdle: past Pool, Acquire creates instances up to PoolMax
// without waiting; past PoolMax it waits and fails; the instances above Pool that stay idle
// for IdleTimeout are closed, oldest first, and Pool stay warm.
func TestPoolGrowsOnDemandAndShrinksWhenIdle(t *testing.T) {
	h := newHost(t)
	f := load(t, h, Spec{Name: "tiny", Module: testdata(t, "tiny.wasm"), Pool: 2, PoolMax: 8, IdleTimeout: 100 * time.Millisecond, Timeout: 50 * time.Millisecond})
	if st := f.Stats(); st.Live != 2 || st.Created != 2 || st.Max != 8 {
		t.Fatalf("after load: %+v", st)
	}
	held := make([]*Instance, 8)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range held {
		wg.Go(func() { held[i], errs[i] = f.Acquire(testCtx) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if st := f.Stats(); st.Live != 8 || st.InUse != 8 || st.Waits != 0 || st.Created != 8 {
		t.Fatalf("8 held: %+v", st)
	}
	_, err := f.Acquire(testCtx)
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != KindPool {
		t.Fatalf("a 9th acquire past pool_max: %v", err)
	}
	for _, inst := range held {
		inst.Release()
	}
	deadline := time.Now().Add(5 * time.Second)
	for f.Stats().Live != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("idle instances above the pool were not closed: %+v", f.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := f.Stats(); st.Shrunk != 6 || st.Idle != 2 {
		t.Fatalf("after the idle timeout: %+v", st)
	}
	// The warm instances still serve.
	inst, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	inst.Release()
	if st := f.Stats(); st.Created != 8 {
		t.Fatalf("a warm instance was recreated: %+v", st)
	}
}

// TestCountersAddUpAcrossReplacement: a filter replaced by a new module of the same name (a
// reload) continues its counters, as Prometheus counters must, instead of starting over.
func TestCountersAddUpAcrossReplacement(t *testing.T) {
	h := newHost(t)
	a := load(t, h, Spec{Name: "x", Module: testdata(t, "tiny.wasm"), Pool: 3})
	if got := a.Stats().Created; got != 3 {
		t.Fatalf("created %d, want 3", got)
	}
	b := load(t, h, Spec{Name: "x", Module: testdata(t, "unreachable.wasm"), Pool: 2})
	if got := b.Stats().Created; got != 5 {
		t.Fatalf("after the replacement created %d, want 3 + 2", got)
	}
	if got := load(t, h, Spec{Name: "y", Module: testdata(t, "tiny.wasm"), Pool: 1}).Stats().Created; got != 1 {
		t.Fatalf("another name shares the counters: created %d", got)
	}
}
