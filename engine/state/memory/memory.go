package memory

import (
	"context"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/hookwall/hookwall/engine/state"
	"github.com/hookwall/hookwall/engine/state/internal/gcra"
)

// DefaultMaxKeys is the bound used when Options.MaxKeys is 0; it matches the config default.
const DefaultMaxKeys = 1 << 20

// DefaultMaxBytes is the bound used when Options.MaxBytes is 0; it matches the config
// default. It is sized so that DefaultMaxKeys keys of up to state.MaxKeyLen bytes fit.
const DefaultMaxBytes = 256 << 20

// DefaultShards is the shard count used when Options.Shards is 0.
const DefaultShards = 64

// EntryOverhead is what the store counts for one entry besides its key's bytes: the arena
// slot (with its expiry-bucket links), the map slot and the free-list slot (about 100–125
// bytes measured at 0.1–1M entries), with some of the slack of their growth.
const EntryOverhead = 128

// minShardBytes keeps shards from being so small that one long key evicts a whole shard:
// a small MaxBytes means fewer shards.
const minShardBytes = 16 << 10

// Options configures New. The zero value is usable.
type Options struct {
	// MaxKeys bounds the number of entries (rate and dedupe keys together). Default
	// DefaultMaxKeys.
	MaxKeys int
	// MaxBytes bounds the bytes the entries take, counted as each key's length plus
	// EntryOverhead. Default DefaultMaxBytes. Keys are expected to be bounded by
	// state.Bound (at most 71 bytes); a single larger entry still fits an empty shard.
	MaxBytes int64
	// Shards is rounded up to a power of two, and down to at most MaxKeys (and to shards of
	// at least 16 KiB of MaxBytes). Default DefaultShards.
	Shards int
	// Now is the clock; tests inject one. Default time.Now. It must be safe for concurrent use.
	Now func() time.Time
}

// Stats is a snapshot of the store's size and evictions.
type Stats struct {
	Keys      int    // entries held now, expired-but-not-yet-dropped ones included
	Bytes     int64  // bytes counted for them (key lengths plus EntryOverhead each)
	Evictions uint64 // live entries dropped because a shard was full (keys or bytes)
}

// Store is the in-memory state.Store. It is safe for concurrent use; the zero value is not
// usable, use New.
type Store struct {
	shards []shard
	mask   uint64
	seed   maphash.Seed
	now    func() time.Time
	closed atomic.Bool
}

var _ state.Store = (*Store)(nil)

var errClosed = fmt.Errorf("state/memory: store closed: %w", state.ErrUnavailable)

// New returns an empty store.
func New(o Options) *Store {
	maxKeys := o.MaxKeys
	if maxKeys <= 0 {
		maxKeys = DefaultMaxKeys
	}
	maxBytes := o.MaxBytes
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	n := o.Shards
	if n <= 0 {
		n = DefaultShards
	}
	if n > maxKeys {
		n = maxKeys
	}
	n = 1 << bits.Len(uint(n-1)) // round up to a power of two
	for n > maxKeys || (n > 1 && maxBytes/int64(n) < minShardBytes) {
		n >>= 1
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	s := &Store{
		shards: make([]shard, n),
		mask:   uint64(n - 1),
		seed:   maphash.MakeSeed(),
		now:    now,
	}
	for i := range s.shards {
		s.shards[i].init(maxKeys/n, maxBytes/int64(n))
	}
	return s
}

func (s *Store) shardOf(key string) int {
	return int(maphash.String(s.seed, key) & s.mask)
}

// Admit implements state.Store.
func (s *Store) Admit(_ context.Context, c *state.Check) (state.Admission, error) {
	if s.closed.Load() {
		return state.Admission{}, errClosed
	}
	if err := c.Validate(); err != nil {
		return state.Admission{}, err
	}
	rateOn, dedupeOn := c.RateKey != "", c.DedupeKey != ""
	if !rateOn && !dedupeOn {
		return state.Admission{}, nil
	}
	now := s.now().UnixMicro()

	// Both obligations are decided under the locks of both shards, taken in index order.
	ri, di := -1, -1
	if rateOn {
		ri = s.shardOf(c.RateKey)
	}
	if dedupeOn {
		di = s.shardOf(c.DedupeKey)
	}
	lo, hi := ri, di
	if lo > hi {
		lo, hi = hi, lo
	}
	if lo >= 0 {
		s.shards[lo].mu.Lock()
		defer s.shards[lo].mu.Unlock()
	}
	if hi != lo {
		s.shards[hi].mu.Lock()
		defer s.shards[hi].mu.Unlock()
	}

	var ds, rs *shard
	if dedupeOn {
		ds = &s.shards[di]
		ds.sweep(now)
		if i, ok := ds.lookup(ds.dedupe, c.DedupeKey, now); ok {
			if ds.ents[i].kind == kindDelivered {
				return state.Admission{Dedupe: state.DedupeDelivered}, nil
			}
			return state.Admission{Dedupe: state.DedupeInFlight}, nil
		}
	}
	var adm state.Admission
	if rateOn {
		rs = &s.shards[ri]
		if rs != ds {
			rs.sweep(now)
		}
		lim, _ := gcra.New(c.Limit, int64(c.Per/time.Microsecond), c.Burst) // validated above
		// An expired rate entry is a fresh key's state: it is reused in place, not dropped and
		// made again.
		i, ok := rs.rate[c.RateKey]
		var tat, frac int64
		if ok && rs.ents[i].exp > now {
			tat, frac = rs.ents[i].tat, rs.ents[i].frac
		}
		r := lim.Decide(now, tat, frac)
		if !r.Allowed {
			return state.Admission{Limited: true, RetryAfter: time.Duration(r.RetryUS) * time.Microsecond}, nil
		}
		if ok {
			e := &rs.ents[i]
			e.tat, e.frac = r.Tat, r.Frac
			rs.setExp(i, now+r.TTL)
		} else {
			i = rs.insert(rs.rate, c.RateKey, kindRate, now+r.TTL, now)
			rs.ents[i].tat, rs.ents[i].frac = r.Tat, r.Frac
		}
		adm.Remaining = r.Remaining
	}
	if dedupeOn {
		ttl := min(c.DedupeTTL, state.InFlightTTL)
		i := ds.insert(ds.dedupe, c.DedupeKey, kindInFlight, now+ttl.Microseconds(), now)
		adm.Dedupe, adm.Claim = state.DedupeNew, uint64(di)<<32|uint64(i+1)
	}
	return adm, nil
}

// Commit implements state.Store.
func (s *Store) Commit(_ context.Context, key string, ttl time.Duration) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := state.ValidTTL(ttl); err != nil {
		return err
	}
	now := s.now().UnixMicro()
	sh := &s.shards[s.shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.sweep(now)
	exp := now + ttl.Microseconds()
	if i, ok := sh.lookup(sh.dedupe, key, now); ok {
		sh.ents[i].kind = kindDelivered
		sh.setExp(i, exp)
		return nil
	}
	sh.insert(sh.dedupe, key, kindDelivered, exp, now)
	return nil
}

// CommitClaim is Commit for a key whose Admit answered DedupeNew with claim
// (state.Admission.Claim): while the claim's slot still holds key's dedupe entry, it is marked
// delivered there without hashing or looking up the key; otherwise, and for any other claim,
// it commits as Commit does. The effect is Commit's either way.
func (s *Store) CommitClaim(ctx context.Context, key string, claim uint64, ttl time.Duration) error {
	si, slot := claim>>32, int64(claim&0xffffffff)-1
	if s.closed.Load() || state.ValidTTL(ttl) != nil || si >= uint64(len(s.shards)) || slot < 0 {
		return s.Commit(ctx, key, ttl)
	}
	now := s.now().UnixMicro()
	sh := &s.shards[si]
	sh.mu.Lock()
	if slot < int64(len(sh.ents)) {
		e := &sh.ents[slot]
		if e.key == key && e.kind != kindRate && e.exp > now {
			e.kind = kindDelivered
			sh.setExp(int32(slot), now+ttl.Microseconds())
			sh.sweep(now)
			sh.mu.Unlock()
			return nil
		}
	}
	sh.mu.Unlock()
	return s.Commit(ctx, key, ttl)
}

// Release implements state.Store.
func (s *Store) Release(_ context.Context, key string) error {
	if s.closed.Load() {
		return errClosed
	}
	now := s.now().UnixMicro()
	sh := &s.shards[s.shardOf(key)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if i, ok := sh.lookup(sh.dedupe, key, now); ok && sh.ents[i].kind == kindInFlight {
		sh.remove(i)
	}
	return nil
}

// Close drops every entry; later calls fail with an error wrapping state.ErrUnavailable.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.init(sh.limit, sh.byteLimit)
		sh.mu.Unlock()
	}
	return nil
}

// Stats returns the current size and the eviction count. It locks each shard in turn, so it
// is a consistent sum only when no writes run concurrently; it is meant for metrics.
func (s *Store) Stats() Stats {
	var st Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Keys += len(sh.rate) + len(sh.dedupe)
		st.Bytes += sh.bytes
		st.Evictions += sh.evictions
		sh.mu.Unlock()
	}
	return st
}
