package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// MaxKeyLen is the longest key a backend is handed as it is. A longer one reaches the
// backend as its digest (see StoreKey), so what a store holds per key is bounded in bytes
// whatever a policy builds its keys from (a 14 KB header included).
const MaxKeyLen = 64

// digestPrefix starts a digest key. With the 64 hex digits a digest key is 71 bytes, longer
// than MaxKeyLen, so it never equals a key that is passed as it is: a client that sends the
// digest of another key as its own key gets that digest's digest, not the other key's entry.
const digestPrefix = "sha256:"

// StoreKey returns the key the backend stores for key: key itself when it is at most
// MaxKeyLen bytes (no allocation), else "sha256:" and the hex SHA-256 of key.
func StoreKey(key string) string {
	if len(key) <= MaxKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	var b [len(digestPrefix) + 2*sha256.Size]byte
	copy(b[:], digestPrefix)
	hex.Encode(b[len(digestPrefix):], sum[:])
	return string(b[:])
}

// Bounded is a Store whose keys pass through StoreKey before they reach the backend: the
// one place every backend sits behind. It is safe for concurrent use as far as the backend
// is.
type Bounded struct {
	backend  Store
	claims   claimCommitter // backend, when it settles claims by Admission.Claim
	releases claimReleaser  // backend, when it releases only the claim named
	noCtx    bool           // the backend reads no context
}

// claimCommitter is a backend that can commit a claim by the Admission.Claim its Admit
// returned, without finding the key again.
type claimCommitter interface {
	CommitClaim(ctx context.Context, key string, claim uint64, ttl time.Duration) error
}

// claimReleaser is a backend that releases a key only while it holds the claim named by the
// Admission.Claim its Admit returned (a backend shared by gateways, whose release is repeated
// on a timeout).
type claimReleaser interface {
	ReleaseClaim(ctx context.Context, key string, claim uint64) error
}

var _ Store = (*Bounded)(nil)

// Bound returns backend behind StoreKey.
func Bound(backend Store) *Bounded {
	b := &Bounded{backend: backend}
	b.claims, _ = backend.(claimCommitter)
	b.releases, _ = backend.(claimReleaser)
	cf, ok := backend.(interface{ IgnoresContext() bool })
	b.noCtx = ok && cf.IgnoresContext()
	return b
}

// Backend returns the store behind b (for its own statistics).
func (b *Bounded) Backend() Store { return b.backend }

// Admit implements Store. With keys of at most MaxKeyLen bytes it passes c on unchanged.
func (b *Bounded) Admit(ctx context.Context, c *Check) (Admission, error) {
	if len(c.RateLimit.Key) <= MaxKeyLen && len(c.Dedupe.Key) <= MaxKeyLen {
		return b.backend.Admit(ctx, c)
	}
	bc := *c
	bc.RateLimit.Key, bc.Dedupe.Key = StoreKey(c.RateLimit.Key), StoreKey(c.Dedupe.Key)
	return b.backend.Admit(ctx, &bc)
}

// Commit implements Store.
func (b *Bounded) Commit(ctx context.Context, key string, ttl time.Duration) error {
	return b.backend.Commit(ctx, StoreKey(key), ttl)
}

// CommitClaim is Commit for the key of a DedupeNew, given the Admission.Claim of its Admit:
// the same effect, but a backend that can find the claim without looking the key up again
// does so. claim 0, or a claim that no longer holds key, commits as Commit does.
func (b *Bounded) CommitClaim(ctx context.Context, key string, claim uint64, ttl time.Duration) error {
	if b.claims == nil || claim == 0 {
		return b.backend.Commit(ctx, StoreKey(key), ttl)
	}
	return b.claims.CommitClaim(ctx, StoreKey(key), claim, ttl)
}

// IgnoresContext reports whether the backend reads no context (it says so with an
// IgnoresContext method of its own): a caller may then skip making a deadline for a call.
func (b *Bounded) IgnoresContext() bool { return b.noCtx }

// Release implements Store.
func (b *Bounded) Release(ctx context.Context, key string) error {
	return b.backend.Release(ctx, StoreKey(key))
}

// ReleaseClaim is Release for the key of a DedupeNew, given the Admission.Claim of its Admit:
// a backend that can tell claims apart drops only that one, not a claim another gateway
// made of the key since. claim 0 releases as Release does.
func (b *Bounded) ReleaseClaim(ctx context.Context, key string, claim uint64) error {
	if b.releases == nil || claim == 0 {
		return b.backend.Release(ctx, StoreKey(key))
	}
	return b.releases.ReleaseClaim(ctx, StoreKey(key), claim)
}

// Close implements Store: it closes the backend.
func (b *Bounded) Close() error { return b.backend.Close() }
