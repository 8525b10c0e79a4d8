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
// slot (with its expiry-bucket links), the index or map slot, the free-list slot and a rate
// key's cell (75 bytes a dedupe entry measured on the heap at 0.5M entries; a rate entry adds
// its cell and its map slot), with some of the slack of their growth.
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
	// Now is the clock; tests inject one. It must be safe for concurrent use. Default: the
	// wall clock read at New, advanced by the monotonic clock, so that a step of the wall
	// clock moves no expiry and a reading costs a monotonic read only.
	Now func() time.Time
}

// Stats is a snapshot of the store's size and evictions.
type Stats struct {
	Keys      int    // entries held now, expired-but-not-yet-dropped ones included
	Bytes     int64  // bytes counted for them (key lengths plus EntryOverhead each)
	Evictions uint64 // live entries dropped because a shard was full (keys or bytes)
	// DedupeEvictions counts, of Evictions, the live dedupe entries dropped: delivered
	// markers (and claims in flight, once claims hold more than half a shard), each of which
	// lets a replay of its key through before its TTL. A full shard evicts its rate-limit
	// entries first, so this grows only when a shard holds dedupe entries alone: alert on it.
	DedupeEvictions uint64
}

// Store is the in-memory state.Store. It is safe for concurrent use; the zero value is not
// usable, use New.
type Store struct {
	shards []shard
	mask   uint64
	seed   maphash.Seed
	now    func() int64 // unix µs
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
	var now func() int64
	if o.Now != nil {
		now = func() int64 { return o.Now().UnixMicro() }
	} else {
		epoch := time.Now()
		us := epoch.UnixMicro()
		now = func() int64 { return us + int64(time.Since(epoch)/time.Microsecond) }
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

// locate returns key's shard and its hash within the shard (the dedupe index's): the low bits
// of one hash choose the shard, the high half places the key in the shard's index.
func (s *Store) locate(key string) (shard int, h uint32) {
	x := maphash.String(s.seed, key)
	return int(x & s.mask), uint32(x >> 32)
}

// Admit implements state.Store.
func (s *Store) Admit(_ context.Context, c *state.Check) (state.Admission, error) {
	if s.closed.Load() {
		return state.Admission{}, errClosed
	}
	lim, err := c.ValidateLimit()
	if err != nil {
		return state.Admission{}, err
	}
	rateOn, dedupeOn := c.RateLimit.Key != "", c.Dedupe.Key != ""
	if !rateOn && !dedupeOn {
		return state.Admission{}, nil
	}
	now := s.now()
	ri, di := -1, -1
	var dh uint32
	if rateOn {
		ri, _ = s.locate(c.RateLimit.Key)
	}
	if dedupeOn {
		di, dh = s.locate(c.Dedupe.Key)
	}
	if adm, ok := s.admitShared(c, lim, now, ri, di, dh); ok {
		return adm, nil
	}
	return s.admitExclusive(c, lim, now, ri, di, dh), nil
}

// admitShared is Admit for a rate key that has its cell in the rate shard already (or no rate
// key): the dedupe key's shard is locked, the rate shard only read-locked, and the rate cell
// updated by compare-and-swap, so a hot rate key is decided by many requests at once. ok is
// false, with nothing changed, when the cell must be made or rebased: admitExclusive does it.
// dh is the dedupe key's hash (locate).
func (s *Store) admitShared(c *state.Check, lim gcra.Limit, now int64, ri, di int, dh uint32) (adm state.Admission, ok bool) {
	var ds *shard
	if di >= 0 {
		ds = &s.shards[di]
		ds.mu.Lock()
		defer ds.mu.Unlock()
		if st, seen := ds.seen(c.Dedupe.Key, dh, now); seen {
			return state.Admission{Dedupe: st}, true
		}
	}
	if ri >= 0 {
		rs := &s.shards[ri]
		rs.rmu.RLock()
		cell := rs.cells[c.RateLimit.Key]
		if cell == nil || cell.l != lim.L {
			rs.rmu.RUnlock()
			return adm, false
		}
		r, ok := cell.decide(lim, now)
		rs.rmu.RUnlock()
		if !ok {
			return adm, false
		}
		if !r.Allowed {
			return state.Admission{Limited: true, RetryAfter: time.Duration(r.RetryUS) * time.Microsecond}, true
		}
		adm.Remaining = r.Remaining
	}
	if ds != nil {
		adm.Dedupe, adm.Claim = ds.claim(c, di, dh, now)
	}
	return adm, true
}

// rateLocked decides one request under lim for key, with mu held: it makes the key's entry and
// cell, or rebases the cell at now (counted in lim's units when the request passes), so that
// the shared path can count the next requests.
func (rs *shard) rateLocked(key string, lim gcra.Limit, now int64) gcra.Result {
	cell := rs.cells[key] // cells changes only under mu, held
	if cell == nil {
		r := lim.Decide(now, 0, 0) // a fresh key always passes
		cell = &rateCell{}
		cell.set(lim.L, now, r.Tat, r.Frac)
		cell.slot = rs.insert(key, 0, kindRate, now+r.TTL, now)
		rs.rmu.Lock()
		rs.cells[key] = cell
		rs.rmu.Unlock()
		return r
	}
	rs.rmu.Lock() // no compare-and-swap runs meanwhile
	var tat, frac int64
	if cell.exp() > now {
		tat, frac = cell.state()
	}
	r := lim.Decide(now, tat, frac)
	switch {
	case r.Allowed:
		cell.set(lim.L, now, r.Tat, r.Frac)
	case tat-now <= maxScaled/cell.l:
		cell.set(cell.l, now, tat, frac) // limited (so tat >= now): the same state from now
	}
	rs.rmu.Unlock()
	if r.Allowed {
		rs.setExp(cell.slot, now+r.TTL)
	}
	return r
}

// seen sweeps ds (locked) and reports whether key (hashed to h) is there already: delivered
// or in flight.
func (ds *shard) seen(key string, h uint32, now int64) (state.DedupeStatus, bool) {
	ds.sweep(now)
	i, ok := ds.lookup(key, h, now)
	switch {
	case !ok:
		return state.DedupeNone, false
	case ds.ents[i].kind == kindDelivered:
		return state.DedupeDelivered, true
	}
	return state.DedupeInFlight, true
}

// claim marks c's dedupe key (hashed to h) in flight in ds, shard di (locked), and names the
// claim.
func (ds *shard) claim(c *state.Check, di int, h uint32, now int64) (state.DedupeStatus, uint64) {
	ttl := c.ClaimTTL()
	i := ds.insert(c.Dedupe.Key, h, kindInFlight, now+ttl.Microseconds(), now)
	return state.DedupeNew, uint64(di)<<32 | uint64(i+1)
}

// admitExclusive is Admit under the locks of both shards, which it takes in index order, and
// the rate shard's write lock: it makes a rate key's cell, or rebases it.
func (s *Store) admitExclusive(c *state.Check, lim gcra.Limit, now int64, ri, di int, dh uint32) state.Admission {
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

	var ds *shard
	if di >= 0 {
		ds = &s.shards[di]
		if st, seen := ds.seen(c.Dedupe.Key, dh, now); seen {
			return state.Admission{Dedupe: st}
		}
	}
	var adm state.Admission
	if ri >= 0 {
		rs := &s.shards[ri]
		if rs != ds {
			rs.sweep(now)
		}
		r := rs.rateLocked(c.RateLimit.Key, lim, now)
		if !r.Allowed {
			return state.Admission{Limited: true, RetryAfter: time.Duration(r.RetryUS) * time.Microsecond}
		}
		adm.Remaining = r.Remaining
	}
	if ds != nil {
		adm.Dedupe, adm.Claim = ds.claim(c, di, dh, now)
	}
	return adm
}

// Commit implements state.Store.
func (s *Store) Commit(_ context.Context, key string, ttl time.Duration) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := state.ValidTTL(ttl); err != nil {
		return err
	}
	now := s.now()
	si, h := s.locate(key)
	sh := &s.shards[si]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.sweep(now)
	exp := now + ttl.Microseconds()
	if i, ok := sh.lookup(key, h, now); ok {
		sh.setKind(i, kindDelivered)
		sh.setExp(i, exp)
		return nil
	}
	sh.insert(key, h, kindDelivered, exp, now)
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
	now := s.now()
	sh := &s.shards[si]
	sh.mu.Lock()
	if slot < int64(len(sh.ents)) {
		e := &sh.ents[slot]
		if e.key == key && e.kind != kindRate && e.exp > now {
			// No sweep: this adds no entry, and Admit, which added this one, swept.
			sh.setKind(int32(slot), kindDelivered)
			sh.setExp(int32(slot), now+ttl.Microseconds())
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
	now := s.now()
	si, h := s.locate(key)
	sh := &s.shards[si]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if i, ok := sh.lookup(key, h, now); ok && sh.ents[i].kind == kindInFlight {
		sh.remove(i)
	}
	return nil
}

// IgnoresContext reports true: no call of the store waits on anything but its own short
// locks, so none reads its context, and a caller need not make a deadline for one.
func (s *Store) IgnoresContext() bool { return true }

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

// Stats returns the current size and the eviction counts. It locks each shard in turn, so it
// is a consistent sum only when no writes run concurrently; it is meant for metrics.
func (s *Store) Stats() Stats {
	var st Stats
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.Keys += len(sh.cells) + sh.dedupe.n
		st.Bytes += sh.bytes
		st.Evictions += sh.evictions
		st.DedupeEvictions += sh.dedupeEvictions
		sh.mu.Unlock()
	}
	return st
}
