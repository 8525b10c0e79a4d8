package watch

import (
	"math"
	"math/bits"
	"sync/atomic"
)

// probeLen is how many consecutive slots a key may live in: a lookup reads at most this many
// keys, and a full sequence evicts its least recently active slot.
const probeLen = 8

// slot is one tracked key's counts. Every field is updated atomically.
type slot struct {
	key   atomic.Uint64 // 0: empty
	epoch atomic.Uint32 // the window cur counts (window start / window length)
	flag  atomic.Uint32 // the anomaly is active through this window: not raised again
	cur   [numClasses]atomic.Uint32
	prev  [numClasses]atomic.Uint32
	base  [numClasses]atomic.Uint32 // float32 bits: EWMA of counts per window
}

// table is a fixed-size open-addressing table of slots.
type table struct {
	slots     []slot
	mask      uint64
	used      atomic.Int64
	evictions atomic.Uint64
}

func newTable(capacity int) *table {
	n := 1 << bits.Len(uint(max(capacity, probeLen)-1)) // next power of two
	return &table{slots: make([]slot, n), mask: uint64(n - 1)}
}

// get returns h's slot, claiming an empty one or evicting the least recently active one of
// its probe sequence. h is never 0.
func (t *table) get(h uint64, ep uint32) *slot {
	i := h & t.mask
	var victim *slot
	oldest := uint32(math.MaxUint32)
	for p := uint64(0); p < probeLen; p++ {
		s := &t.slots[(i+p)&t.mask]
		k := s.key.Load()
		if k == h {
			return s
		}
		if k == 0 {
			if s.key.CompareAndSwap(0, h) {
				s.reset(ep)
				t.used.Add(1)
				return s
			}
			if s.key.Load() == h { // claimed for h by another request just now
				return s
			}
			continue
		}
		if e := s.epoch.Load(); e < oldest {
			victim, oldest = s, e
		}
	}
	if victim == nil {
		// Every probed slot was empty when looked at and another request's key took it
		// before this one could: none is older than another, so the home slot is evicted.
		victim = &t.slots[i]
	}
	if old := victim.key.Load(); old != h && victim.key.CompareAndSwap(old, h) {
		victim.reset(ep)
		t.evictions.Add(1)
	}
	return victim
}

// reset starts a slot afresh for a new key.
func (s *slot) reset(ep uint32) {
	s.epoch.Store(ep)
	s.flag.Store(0)
	for c := range s.cur {
		s.cur[c].Store(0)
		s.prev[c].Store(0)
		s.base[c].Store(0)
	}
}

// roll moves the slot to window ep: the finished window's counts become prev and are folded
// into the baseline; windows that passed without a request decay it. Only the request that
// wins the epoch's compare-and-swap does it.
func (s *slot) roll(ep uint32, alpha float32) {
	old := s.epoch.Load()
	if old >= ep || !s.epoch.CompareAndSwap(old, ep) {
		return
	}
	gap := ep - old
	var decay float32 = 1
	if gap > 1 {
		decay = float32(math.Pow(float64(1-alpha), float64(gap-1)))
	}
	for c := range s.cur {
		n := s.cur[c].Swap(0)
		b := math.Float32frombits(s.base[c].Load())
		b += alpha * (float32(n) - b)
		if gap > 1 {
			b *= decay
			n = 0
		}
		s.prev[c].Store(n)
		s.base[c].Store(math.Float32bits(b))
	}
}

// count returns the sliding-window count of class c: the current window plus the part of the
// previous one still inside (frac is how far into the current window we are).
func (s *slot) count(c Class, cur uint32, frac float32) float32 {
	return float32(cur) + float32(s.prev[c].Load())*(1-frac)
}

func (s *slot) baseline(c Class) float32 { return math.Float32frombits(s.base[c].Load()) }
