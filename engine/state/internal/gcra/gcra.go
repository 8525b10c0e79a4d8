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

// MaxRetryUS bounds a refusal's wait (a day): a state far ahead of now (a clock stepped
// back, a value no limit wrote) would otherwise be told years.
const MaxRetryUS = 24 * 3600 * 1_000_000

// Result is one decision. When Allowed, (Tat, Frac) is the new state, to be kept for TTL µs
// (after that the key is indistinguishable from a fresh one). When not, the old state stands
// and RetryUS is the wait until a request would pass.
type Result struct {
	Allowed   bool
	Tat, Frac int64
	TTL       int64
	RetryUS   int64
	Remaining int64
}

// Decide applies one request at time now to the stored state (tat, frac); a missing key is
// (0, 0). State written under a different Limit for the same key is clamped into range, so a
// policy change never overflows or grants more than the new limit's burst; a request it
// refuses is told to wait until the state as stored is within range, since a refusal writes
// nothing (a wider limit on the same key, another route's, counts on that state).
func (l Limit) Decide(now, tat, frac int64) Result {
	window := l.B * l.P // the furthest a state can be ahead of now, in 1/L µs
	var diff int64
	d := tat - now
	clamped := false
	if d >= 0 {
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
		if clamped {
			// The state stands as it is (another limit on the same key counts on it), so the
			// wait is until it, not its clamp, is within this limit's reach: the first w with
			// (d-w)×L + frac <= maxDiff, in µs, without the product that may overflow.
			q := int64(-1)
			if maxDiff >= frac {
				q = (maxDiff - frac) / l.L
			}
			return Result{RetryUS: min(d-q, MaxRetryUS)}
		}
		return Result{RetryUS: (diff - maxDiff + l.L - 1) / l.L}
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
