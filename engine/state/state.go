package state

import (
	"context"
	"encoding/json"
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
// gateway that crashed mid-request) and the Check does not say (Check.InFlight): the claim's
// TTL is then min(Check.Dedupe.TTL, InFlightTTL).
const InFlightTTL = 5 * time.Minute

// RateLimit is the rate_limit obligation, as a policy decides it and the store enforces it:
// at most Limit requests per Per under Key, Burst of them at once. The policy hands it over
// (engine/policy's Decision) and the server checks it (Check).
type RateLimit struct {
	Key   string
	Limit int64         // requests per Per; > 0 when Key is set
	Per   time.Duration // >= 1µs when Key is set; taken in whole microseconds
	Burst int64         // at most this many at once; 0 means Limit
}

// Dedupe is the dedupe obligation: a request with Key is forwarded once; the delivered marker
// lives TTL.
type Dedupe struct {
	Key string
	TTL time.Duration // > 0 when Key is set
}

// MarshalJSON writes the obligation as the policy wrote it, its period as a duration string:
// {"key", "limit", "per", "burst"?}.
func (r RateLimit) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Key   string `json:"key"`
		Limit int64  `json:"limit"`
		Per   string `json:"per"`
		Burst int64  `json:"burst,omitempty"`
	}{r.Key, r.Limit, r.Per.String(), r.Burst})
}

// MarshalJSON writes the obligation as the policy wrote it, its TTL as a duration string:
// {"key", "ttl"}.
func (d Dedupe) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Key string `json:"key"`
		TTL string `json:"ttl"`
	}{d.Key, d.TTL.String()})
}

// Check is one request's obligations. A zero RateLimit.Key means no rate limit; a zero
// Dedupe.Key means no dedupe. The store may keep the key strings, so they must not be changed
// afterwards (never build them over a fasthttp buffer with unsafe).
type Check struct {
	RateLimit RateLimit
	Dedupe    Dedupe // Dedupe.TTL is how long the delivered marker lives
	// InFlight is how long the claim lives unless it is settled first: the longest the
	// request may take to settle (its route's timeout and a margin), so that a duplicate gets
	// 409 for as long as the first may still be forwarded, and a claim left by a request that
	// never settled (a store call that timed out after the store made it, a crash) is gone
	// soon after. 0 means min(Dedupe.TTL, InFlightTTL).
	InFlight time.Duration
}

// ClaimTTL is how long c's dedupe claim lives unless it is settled first.
func (c *Check) ClaimTTL() time.Duration {
	if c.InFlight > 0 {
		return c.InFlight
	}
	return min(c.Dedupe.TTL, InFlightTTL)
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

// The validation errors are built once: ValidateLimit runs on every Admit and must not
// allocate.
var (
	errLimit  = fmt.Errorf("state: rate limit must be positive: %w", ErrInvalidCheck)
	errPer    = fmt.Errorf("state: rate period must be at least 1µs: %w", ErrInvalidCheck)
	errBurst  = fmt.Errorf("state: rate burst must not be negative: %w", ErrInvalidCheck)
	errWindow = fmt.Errorf("state: rate burst × period too large to count exactly: %w", ErrInvalidCheck)
	errTTL    = fmt.Errorf("state: dedupe ttl must be at least 1ms: %w", ErrInvalidCheck)
)

// Validate reports whether c is within the limits every backend accepts. Stores check it on
// every Admit, by ValidateLimit.
//
// Besides the signs, the rate must be exact in both backends: with L/P = Limit/Per (Per in
// µs) in lowest terms, Burst×P + L must not exceed 2^52. Any limit whose interval Per/Limit is
// a whole number of microseconds passes, and so does nearly every other one ("99999 per day"
// passes, "100003 per day" does not).
func (c *Check) Validate() error {
	_, err := c.ValidateLimit()
	return err
}

// ValidateLimit is Validate that also returns the rate limit in the units the store counts it
// in (the zero Limit when c has no rate key), so that a store validating and deciding one
// check reduces the rate once.
func (c *Check) ValidateLimit() (gcra.Limit, error) {
	var lim gcra.Limit
	if rl := &c.RateLimit; rl.Key != "" {
		switch {
		case rl.Limit <= 0:
			return lim, errLimit
		case rl.Per < time.Microsecond:
			return lim, errPer
		case rl.Burst < 0:
			return lim, errBurst
		}
		var ok bool
		if lim, ok = gcra.New(rl.Limit, int64(rl.Per/time.Microsecond), rl.Burst); !ok {
			return lim, errWindow
		}
	}
	if c.Dedupe.Key != "" && c.Dedupe.TTL < time.Millisecond {
		return lim, errTTL
	}
	return lim, nil
}

// ValidTTL reports whether ttl is acceptable for Commit.
func ValidTTL(ttl time.Duration) error {
	if ttl < time.Millisecond {
		return errTTL
	}
	return nil
}
