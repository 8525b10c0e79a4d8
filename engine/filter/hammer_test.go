package filter

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// TestHammerPool runs P goroutines × N requests, released together, against
// a pool smaller than P with a guest that traps on every fifth request, and
// checks the pool's bound and its accounting. Run with -race.
func TestHammerPool(t *testing.T) {
	const (
		P    = 8
		N    = 200
		pool = 3
	)
	f := load(t, newHost(t), Spec{Name: "unreachable", Module: testdata(t, "unreachable.wasm"), Pool: pool, PoolMax: pool, MaxUses: 7})
	var traps, ok, overBound atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for p := range P {
		wg.Go(func() {
			<-start
			for n := range N {
				raw := getReq
				trap := (p*N+n)%5 == 0
				if trap {
					raw = "GET / HTTP/1.1\r\nHost: x\r\nX-Trap: 1\r\n\r\n"
				}
				next, _, err := call(t, f, raw)
				switch {
				case trap && err != nil:
					wantKind(t, err, KindTrap)
					traps.Add(1)
				case !trap && err == nil && next:
					ok.Add(1)
				default:
					t.Errorf("trap=%v: next=%v err=%v", trap, next, err)
				}
				if st := f.Stats(); st.Live > pool || st.InUse > pool {
					overBound.Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	testutil.WaitFor(t, func() bool { return !f.refilling.Load() && f.Stats().Live == pool })

	st := f.Stats()
	if traps.Load() != P*N/5 || ok.Load() != P*N-P*N/5 {
		t.Errorf("traps %d ok %d", traps.Load(), ok.Load())
	}
	if overBound.Load() > 0 {
		t.Errorf("pool bound exceeded %d times", overBound.Load())
	}
	if st.InUse != 0 || st.Idle != pool || st.Discarded != uint64(traps.Load()) || st.Errors.Trap != uint64(traps.Load()) {
		t.Errorf("stats %+v", st)
	}
	if st.Created != uint64(pool)+st.Discarded+st.Recycled {
		t.Errorf("created %d != pool %d + discarded %d + recycled %d", st.Created, pool, st.Discarded, st.Recycled)
	}
	t.Logf("stats %+v", st)
}
