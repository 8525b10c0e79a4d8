// Package gcra is the exact-integer GCRA (generic cell rate algorithm) both state backends
// share: the memory store runs this code, the Redis store runs a line-by-line Lua copy of it
// (engine/state/redis), and a differential test holds the two to the same answers.
//
// Time is in microseconds. The emission interval Per/Limit is generally not an integer, so
// the theoretical arrival time (TAT) is kept as Tat + Frac/L µs with 0 <= Frac < L, where L/P
// is Limit/Per (reduced if need be), and every comparison is made in units of 1/L µs. New
// only accepts limits with B×P + L <= 2^52; with now < 2^52 µs (until the year 2112) every
// intermediate value, a new TAT included, stays below 2^53 and is therefore an exact integer
// in a float64 (a Lua number) as well.
package gcra

// MaxExact bounds B×P + L (see the package comment).
const MaxExact = 1 << 52

// Limit is a validated rate in lowest terms: one request costs P/L µs, at most B at once.
type Limit struct {
	L, P, B int64
}

// New returns limit requests per perUS µs with burst (0 means limit) and reports whether it
// is within the exact range. L/P is reduced to lowest terms only when that is needed to get
// into range: the decisions are the same either way (only the stored Frac's unit differs,
// and a given Check always maps to the same Limit), and the common case skips the gcd.
func New(limit, perUS, burst int64) (Limit, bool) {
	if limit <= 0 || perUS <= 0 || burst < 0 {
		return Limit{}, false
	}
	if burst == 0 {
		burst = limit
	}
	if limit <= MaxExact && burst <= (MaxExact-limit)/perUS {
		return Limit{L: limit, P: perUS, B: burst}, true
	}
	g := gcd(limit, perUS)
	l, p := limit/g, perUS/g
	if l > MaxExact || burst > (MaxExact-l)/p {
		return Limit{}, false
	}
	return Limit{L: l, P: p, B: burst}, true
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Result is one decision. When Allowed, (Tat, Frac) is the new state, to be kept for TTL µs
// (after that the key is indistinguishable from a fresh one). When not, RetryUS is the wait
// until a request would pass, and the old state stands, unless Clamped: the state was
// further ahead than this Limit allows (written under a wider one), and (Tat, Frac, TTL) is
// it clamped into range, to be kept in its place, so that RetryUS holds.
type Result struct {
	Allowed   bool
	Clamped   bool
	Tat, Frac int64
	TTL       int64
	RetryUS   int64
	Remaining int64
}

// Decide applies one request at time now to the stored state (tat, frac); a missing key is
// (0, 0). State written under a different Limit for the same key is clamped into range, so a
// policy change never overflows or grants more than the new limit's burst.
func (l Limit) Decide(now, tat, frac int64) Result {
	window := l.B * l.P // the furthest a state can be ahead of now, in 1/L µs
	var diff int64
	clamped := false
	if d := tat - now; d >= 0 {
		if frac >= l.L {
			frac = l.L - 1
		}
		if d > window/l.L {
			diff, clamped = window, true
		} else {
			diff = d*l.L + frac
			if diff > window {
				diff, clamped = window, true
			}
		}
	}
	maxDiff := window - l.P // (B-1)×P: a request passes while the state is at most this far ahead
	if diff > maxDiff {
		r := Result{RetryUS: (diff - maxDiff + l.L - 1) / l.L}
		if clamped {
			r.Clamped, r.Tat, r.Frac, r.TTL = true, now+window/l.L, window%l.L, (window+l.L-1)/l.L
		}
		return r
	}
	next := diff + l.P
	return Result{
		Allowed:   true,
		Tat:       now + next/l.L,
		Frac:      next % l.L,
		TTL:       (next + l.L - 1) / l.L,
		Remaining: (window - next) / l.P,
	}
}
