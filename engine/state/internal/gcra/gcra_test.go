package gcra

import (
	"math/big"
	"math/rand/v2"
	"testing"
)

func TestNew(t *testing.T) {
	for _, tc := range []struct {
		name              string
		limit, per, burst int64
		want              Limit
		ok                bool
	}{
		{"10 per minute", 10, 60e6, 0, Limit{L: 10, P: 60e6, B: 10}, true},
		{"7 per minute", 7, 60e6, 0, Limit{L: 7, P: 60e6, B: 7}, true},
		{"burst kept", 60, 60e6, 3, Limit{L: 60, P: 60e6, B: 3}, true},
		{"reduced when needed", 1_000_000, 86400e6, 0, Limit{L: 1, P: 86400, B: 1_000_000}, true},
		{"99999 per day", 99999, 86400e6, 0, Limit{L: 11111, P: 9600000000, B: 99999}, true},
		{"100003 per day", 100003, 86400e6, 0, Limit{}, false},
		{"zero limit", 0, 1e6, 0, Limit{}, false},
		{"zero period", 1, 0, 0, Limit{}, false},
		{"negative burst", 1, 1e6, -1, Limit{}, false},
		{"edge of range", 1, 1, MaxExact - 1, Limit{L: 1, P: 1, B: MaxExact - 1}, true},
		{"past the edge", 1, 1, MaxExact, Limit{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := New(tc.limit, tc.per, tc.burst)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("New(%d, %d, %d) = %+v, %v; want %+v, %v", tc.limit, tc.per, tc.burst, got, ok, tc.want, tc.ok)
			}
		})
	}
}

// ref is GCRA in exact rational arithmetic, straight from the textbook: TAT is a rational
// number of µs, T = Per/Limit, tau = (Burst-1)×T.
type ref struct {
	tat        *big.Rat
	t, tau, bT *big.Rat
}

func newRef(limit, per, burst int64) *ref {
	T := big.NewRat(per, limit)
	return &ref{
		tat: new(big.Rat),
		t:   T,
		tau: new(big.Rat).Mul(T, big.NewRat(burst-1, 1)),
		bT:  new(big.Rat).Mul(T, big.NewRat(burst, 1)),
	}
}

func (r *ref) decide(now int64) (allowed bool, retry, remaining int64) {
	n := big.NewRat(now, 1)
	tat := r.tat
	if tat.Cmp(n) < 0 {
		tat = n
	}
	ahead := new(big.Rat).Sub(tat, n)
	if ahead.Cmp(r.tau) > 0 {
		wait := new(big.Rat).Sub(ahead, r.tau)
		return false, ceilRat(wait), 0
	}
	r.tat = new(big.Rat).Add(tat, r.t)
	left := new(big.Rat).Sub(r.bT, new(big.Rat).Sub(r.tat, n))
	left.Quo(left, r.t)
	return true, 0, floorRat(left)
}

func floorRat(x *big.Rat) int64 {
	q := new(big.Int).Div(x.Num(), x.Denom()) // Euclidean: floor for a positive denominator
	return q.Int64()
}

func ceilRat(x *big.Rat) int64 {
	return -floorRat(new(big.Rat).Neg(x))
}

// Decide agrees with the rational reference on random traffic for awkward limits.
func TestDecideMatchesRationalReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	limits := [][3]int64{
		{10, 60e6, 0}, {7, 60e6, 0}, {3, 1e6, 1}, {60, 60e6, 3}, {1, 60e6, 5},
		{99999, 86400e6, 0}, {13, 1000, 4}, {1000, 1, 0}, {997, 1e6, 0},
	}
	for _, lc := range limits {
		burst := lc[2]
		if burst == 0 {
			burst = lc[0]
		}
		l, ok := New(lc[0], lc[1], lc[2])
		if !ok {
			t.Fatalf("New%v rejected", lc)
		}
		r := newRef(lc[0], lc[1], burst)
		now := int64(1_800_000_000_000_000)
		var tat, frac int64
		step := max(1, lc[1]/lc[0]) // about one interval
		for i := range 3000 {
			switch rng.IntN(4) {
			case 0: // burst: same instant
			case 1:
				now += rng.Int64N(step/4 + 1)
			case 2:
				now += rng.Int64N(2*step + 1)
			case 3:
				now += rng.Int64N(step*burst + 1)
			}
			got := l.Decide(now, tat, frac)
			allowed, retry, remaining := r.decide(now)
			if got.Allowed != allowed || got.RetryUS != retry || got.Remaining != remaining {
				t.Fatalf("limit %v step %d at %d: got %+v; reference allowed=%v retry=%d remaining=%d", lc, i, now, got, allowed, retry, remaining)
			}
			if got.Allowed {
				tat, frac = got.Tat, got.Frac
				// The stored TAT is the reference's, exactly.
				if exact := new(big.Rat).Add(big.NewRat(tat, 1), big.NewRat(frac, l.L)); exact.Cmp(r.tat) != 0 {
					t.Fatalf("limit %v step %d: TAT %d+%d/%d, reference %v", lc, i, tat, frac, l.L, r.tat)
				}
				// TTL is when the state is back to fresh (TAT <= now), rounded up.
				if back := l.Decide(now+got.TTL, tat, frac); back.Remaining != burst-1 {
					t.Fatalf("limit %v: after TTL %d the key is not fresh: %+v", lc, got.TTL, back)
				}
			}
		}
	}
}

// State from another limit, or garbage, is clamped: never more than the new burst is owed.
// A refusal writes nothing, so its wait is until the state as stored is in range, at most a
// day.
func TestDecideClampsForeignState(t *testing.T) {
	l, _ := New(1, 1e6, 2) // 1/s, burst 2: window 2e6
	now := int64(1e15)
	for _, tc := range []struct {
		name      string
		tat, frac int64
		allowed   bool
		retry     int64
	}{
		{"far future", now + 1e12, 0, false, MaxRetryUS},
		{"an hour ahead", now + 3600e6, 0, false, 3600e6 - 1e6},
		{"frac beyond L is clamped to L-1", now + 1e6, 5, true, 0},
		{"just in range", now + 1e6, 0, true, 0},
		{"past", now - 1e9, 0, true, 0},
		{"max int", 1<<63 - 1, 1<<63 - 1, false, MaxRetryUS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := l.Decide(now, tc.tat, tc.frac)
			if got.Allowed != tc.allowed || got.RetryUS != tc.retry {
				t.Fatalf("Decide = %+v, want allowed %v retry %d", got, tc.allowed, tc.retry)
			}
		})
	}
}
