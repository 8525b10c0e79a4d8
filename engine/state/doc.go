// Package state is the contract between the gateway and its shared-state backends: the rate
// limits and duplicate (replay) detection a policy asks for .
//
// A request's obligations travel as one Check. Store.Admit decides both in a single atomic step
// (one lock section in memory, one script round trip in Redis), in this order:
//
//  1. Dedupe. A key already delivered answers DedupeDelivered, a key still in flight answers
//     DedupeInFlight; neither consumes a rate-limit token.
//  2. Rate limit (GCRA). Over the limit answers Limited with RetryAfter, and leaves no dedupe
//     claim behind (Dedupe is DedupeNone).
//  3. Claim. The dedupe key is marked in flight for Check.ClaimTTL (the request's longest
//     time to settle; min(Dedupe.TTL, InFlightTTL) when the Check does not say) and Admit
//     answers DedupeNew: the caller must then Commit (upstream answered 2xx) or Release
//     (upstream failed) the key.
//
// # Rate limit
//
// GCRA with Limit requests per Per and at most Burst at once (Burst 0 means Limit). The
// emission interval is Per/Limit; the arithmetic is exact (integer microseconds scaled by
// Limit, no rounding drift), so "10 per minute" passes exactly 10 requests in a burst and then
// one every 6 s. RetryAfter is the time until the next request would pass. Per is taken in
// whole microseconds. Limits too large to count exactly (see Check.Validate) are rejected
// with ErrInvalidCheck by both backends alike, so a policy that works on one works on the
// other.
//
// # Dedupe
//
// A claim is not tagged with its owner (the API carries no token): Release deletes an
// in-flight claim, never a delivered marker, and Commit marks a key delivered whatever its
// state. A claim nobody settles (a gateway crashed mid-request, or a store call timed out
// after the store made the claim) expires by itself at its ClaimTTL.
//
// # Keys
//
// Bound puts a backend behind StoreKey, the one place keys are bounded: a key of at most
// MaxKeyLen bytes passes unchanged (no allocation), a longer one becomes "sha256:" and its hex
// digest (71 bytes, longer than MaxKeyLen, so it never equals a key passed as it is). The
// gateway runs every backend behind Bound, so no store holds more than 71 bytes of key per
// entry whatever a policy builds its keys from.
//
// # Errors
//
// Backend failures (timeouts, refused connections, a closed store) wrap ErrUnavailable; the
// server applies [state] fail_mode to them. An invalid Check wraps ErrInvalidCheck: that is a
// policy bug, not an outage. Errors never contain key values.
package state
