package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hookwall/hookwall/engine/state/internal/gcra"
)

// DedupeStatus is the duplicate-detection outcome of one Admit.
type DedupeStatus uint8

const (
	// DedupeNone: no dedupe was asked for, or the request was rate limited (nothing claimed).
	DedupeNone DedupeStatus = iota
	// DedupeNew: the key was claimed now and is in flight; the caller must Commit or Release it.
	DedupeNew
	// DedupeInFlight: another request holds the key; the server answers 409.
	DedupeInFlight
	// DedupeDelivered: the key was delivered before; the server answers 200 and does not forward.
	DedupeDelivered
)

// String returns the status as the decision log writes it.
func (s DedupeStatus) String() string {
	switch s {
	case DedupeNone:
		return "none"
	case DedupeNew:
		return "new"
	case DedupeInFlight:
		return "in_flight"
	case DedupeDelivered:
		return "delivered"
	}
	return "unknown"
}

// InFlightTTL caps how long an in-flight claim lives when nobody commits or releases it (a
// gateway that crashed mid-request): the claim's TTL is min(Check.DedupeTTL, InFlightTTL).
const InFlightTTL = 5 * time.Minute

// Check is one request's obligations. A zero RateKey means no rate limit; a zero DedupeKey
// means no dedupe. The store may keep the key strings, so they must not be changed afterwards
// (never build them over a fasthttp buffer with unsafe).
type Check struct {
	RateKey string
	Limit   int64         // requests per Per; > 0 when RateKey is set
	Per     time.Duration // >= 1µs when RateKey is set; taken in whole microseconds
	Burst   int64         // at most this many at once; 0 means Limit

	DedupeKey string
	DedupeTTL time.Duration // > 0 when DedupeKey is set; how long the delivered marker lives
}

// Admission is the outcome of Admit.
type Admission struct {
	Limited    bool
	RetryAfter time.Duration // > 0 when Limited; the server sends it as ceil seconds
	Remaining  int64         // requests that may follow at once; 0 when no token was taken
	Dedupe     DedupeStatus
	// Claim names the claim of a DedupeNew to the store that made it, for a backend that can
	// settle it without looking its key up again (see Bounded.CommitClaim); 0 when there is
	// none or the backend has no use for it.
	Claim uint64
}

// Store decides rate limits and duplicates. It is safe for concurrent use.
type Store interface {
	// Admit decides both obligations atomically in one step (one Redis round trip).
	// Order: dedupe first (InFlight/Delivered consume no rate token), then the rate limit
	// (when Limited, no dedupe claim is left behind), then the claim (DedupeNew).
	// The Check is only read, never kept.
	Admit(ctx context.Context, c *Check) (Admission, error)
	// Commit marks a key delivered for ttl (upstream answered 2xx), whatever its state.
	Commit(ctx context.Context, key string, ttl time.Duration) error
	// Release drops an in-flight claim so the provider's retry goes through (upstream failed).
	// A delivered marker is left alone.
	Release(ctx context.Context, key string) error
	// Close releases the backend's resources; later calls fail with ErrUnavailable. It is
	// idempotent.
	Close() error
}

var (
	// ErrUnavailable is wrapped by every backend failure (timeout, connection refused, closed
	// store): the server applies [state] fail_mode.
	ErrUnavailable = errors.New("state unavailable")
	// ErrInvalidCheck is wrapped when a Check or a Commit argument is out of range.
	ErrInvalidCheck = errors.New("invalid state check")
)

// The validation errors are built once: Validate runs on every Admit and must not allocate.
var (
	errLimit  = fmt.Errorf("state: rate limit must be positive: %w", ErrInvalidCheck)
	errPer    = fmt.Errorf("state: rate period must be at least 1µs: %w", ErrInvalidCheck)
	errBurst  = fmt.Errorf("state: rate burst must not be negative: %w", ErrInvalidCheck)
	errWindow = fmt.Errorf("state: rate burst × period too large to count exactly: %w", ErrInvalidCheck)
	errTTL    = fmt.Errorf("state: dedupe ttl must be at least 1ms: %w", ErrInvalidCheck)
)

// Validate reports whether c is within the limits every backend accepts. Stores call it on
// every Admit; the server may call it earlier to report a policy bug.
//
// Besides the signs, the rate must be exact in both backends: with L/P = Limit/Per (Per in
// µs) in lowest terms, Burst×P + L must not exceed 2^52. Any limit whose interval Per/Limit is
// a whole number of microseconds passes, and so does nearly every other one ("99999 per day"
// passes, "100003 per day" does not).
func (c *Check) Validate() error {
	if c.RateKey != "" {
		switch {
		case c.Limit <= 0:
			return errLimit
		case c.Per < time.Microsecond:
			return errPer
		case c.Burst < 0:
			return errBurst
		}
		if _, ok := gcra.New(c.Limit, int64(c.Per/time.Microsecond), c.Burst); !ok {
			return errWindow
		}
	}
	if c.DedupeKey != "" && c.DedupeTTL < time.Millisecond {
		return errTTL
	}
	return nil
}

// ValidTTL reports whether ttl is acceptable for Commit.
func ValidTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return errTTL
	}
	return nil
}
