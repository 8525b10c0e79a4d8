package watch

import (
	"context"
	"encoding/json"
	"hash/maphash"
	"log/slog"
	"maps"
	"math/bits"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hookwall/hookwall/engine/config"
)

// Fleet is a store of blocks shared by gateways (engine/state/redis implements it). Every
// change bumps a version, so a gateway polls one small value and reads the blocks only
// when it moved.
type Fleet interface {
	// PutBlock stores record under source until it is lifted; records carry their own end.
	PutBlock(ctx context.Context, source string, record []byte) error
	// DeleteBlock removes source's record and reports whether there was one.
	DeleteBlock(ctx context.Context, source string) (bool, error)
	// BlocksVersion returns a number that changes whenever a record is put or deleted.
	BlocksVersion(ctx context.Context) (int64, error)
	// Blocks returns every record by source.
	Blocks(ctx context.Context) (map[string][]byte, error)
}

// Block is a source refused (or, with block = "policy", marked) until Until.
type Block struct {
	Source string    `json:"source"`
	Since  time.Time `json:"since"`
	Until  time.Time `json:"until"`
	// Strikes counts the blocks of this source in a row; each doubles block_for.
	Strikes int    `json:"strikes"`
	Route   string `json:"route,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Rule    string `json:"rule,omitempty"`
	// Gateway is the gateway that placed the block.
	Gateway string `json:"gateway,omitempty"`

	shared bool // written to the fleet, or read from it, and not found missing since
	own    bool // placed here: written to the fleet again if the fleet loses it
}

// record is a block's form in the fleet. A lift is a record too: Since is when it was
// lifted, Until is zero (a gateway of an earlier version reads it as an ended block and
// deletes it) and LiftedUntil is when the record itself ends. It lifts every block of
// Source placed before it, including the one of the gateway that placed it, which would
// otherwise take the block's absence from the fleet for a lost record and write it again.
type record struct {
	Block
	LiftedUntil time.Time `json:"lifted_until,omitzero"`
}

// fleetPoll is how often a gateway checks the fleet's version of the blocks; fleetResync
// how often it reads them all regardless (a restarted Redis loses the version).
const (
	fleetPoll   = 250 * time.Millisecond
	fleetResync = 10 * time.Second
	fleetCall   = 2 * time.Second
)

// fullWarnEvery spaces the warnings that the block table is full.
const fullWarnEvery = time.Minute

type strike struct {
	n     int
	until time.Time
}

// liftMark is a lift made here: when, and when its record in the fleet ends.
type liftMark struct{ at, end time.Time }

// blocks holds the blocks in force, at most max of them. Requests read view: shards of
// immutable maps, each replaced (copied with its change) when one of its sources changes,
// so a new block copies one shard, a few entries, whatever the number of blocks. Changes
// take mu.
type blocks struct {
	cfg     *config.Watch
	fleet   Fleet
	gateway string
	log     *slog.Logger
	max     int // blocks held at once; strikes are kept for at most 2 × max sources
	seed    maphash.Seed

	view  []atomic.Pointer[map[string]int64] // source → until, unix ns; a nil shard is empty
	mask  uint64                             // len(view) - 1
	inMap atomic.Int64                       // len(m): lookup reads no shard while 0

	mu      sync.Mutex
	m       map[string]*Block
	strikes map[string]strike
	// lifts are the lifts made here that may still have a block record before them in the
	// fleet: a pull whose read of the fleet began before a lift's record was written reads
	// the block it lifted, and must not apply it again. Kept until the lift's record ends.
	lifts   map[string]liftMark
	pending []string // placed here, not yet written to the fleet
	kick    chan struct{}

	warned       time.Time // last warning that the table is full
	warnedAtSeen uint64    // refused as of that warning

	fleetErrs atomic.Uint64
	refused   atomic.Uint64 // blocks not placed because the table was full
	// fleetRefused are the fleet's records the last pull found no room for (b.mu).
	fleetRefused map[string]bool
}

func newBlocks(cfg *config.Watch, fleet Fleet, gateway string, log *slog.Logger) *blocks {
	limit := cfg.MaxBlocks
	if limit <= 0 {
		limit = config.DefaultWatchMaxBlocks
	}
	// About 16 blocks a shard when the table is full: a change copies that many entries.
	shards := 1 << bits.Len(uint(min(max(limit/16, 16), 1<<16)-1))
	return &blocks{
		cfg: cfg, fleet: fleet, gateway: gateway, log: log, max: limit, seed: maphash.MakeSeed(),
		view: make([]atomic.Pointer[map[string]int64], shards), mask: uint64(shards - 1),
		m: map[string]*Block{}, strikes: map[string]strike{}, lifts: map[string]liftMark{}, kick: make(chan struct{}, 1),
	}
}

func (b *blocks) shard(source string) uint64 { return maphash.String(b.seed, source) & b.mask }

// lookup returns source's block end while one is in force at now. It neither locks nor
// allocates.
func (b *blocks) lookup(source string, now int64) (until int64, ok bool) {
	if b.inMap.Load() == 0 {
		return 0, false
	}
	v := b.view[b.shard(source)].Load()
	if v == nil {
		return 0, false
	}
	until, ok = (*v)[source]
	return until, ok && now < until
}

// lookupBytes is lookup of a source given as bytes (an IPv6 client's prefix, written on
// the caller's stack). It neither locks nor allocates.
func (b *blocks) lookupBytes(source []byte, now int64) (until int64, ok bool) {
	if b.inMap.Load() == 0 {
		return 0, false
	}
	v := b.view[maphash.Bytes(b.seed, source)&b.mask].Load() // maphash.String's value for the same text
	if v == nil {
		return 0, false
	}
	until, ok = (*v)[string(source)]
	return until, ok && now < until
}

// publishLocked makes the request path see the blocks of sources as m holds them now:
// each shard holding one of them is copied once, with its changes. b.mu is held.
func (b *blocks) publishLocked(sources ...string) {
	if len(sources) == 0 {
		return
	}
	byShard := make(map[uint64][]string, len(sources))
	for _, s := range sources {
		i := b.shard(s)
		byShard[i] = append(byShard[i], s)
	}
	for i, ss := range byShard {
		var v map[string]int64
		if old := b.view[i].Load(); old != nil {
			v = maps.Clone(*old)
		} else {
			v = make(map[string]int64, len(ss))
		}
		for _, s := range ss {
			if bl := b.m[s]; bl != nil {
				v[s] = bl.Until.UnixNano()
			} else {
				delete(v, s)
			}
		}
		if len(v) == 0 {
			b.view[i].Store(nil)
		} else {
			b.view[i].Store(&v)
		}
	}
	b.inMap.Store(int64(len(b.m)))
}

// roomLocked reports whether source may take a new entry in m; when the table is full it
// counts the refusal (when count says to) and warns, at most once a fullWarnEvery. b.mu is
// held.
func (b *blocks) roomLocked(source string, count bool) bool {
	if _, ok := b.m[source]; ok || len(b.m) < b.max {
		return true
	}
	if !count {
		return false
	}
	n := b.refused.Add(1)
	if t := time.Now(); t.Sub(b.warned) >= fullWarnEvery {
		b.log.Warn("block table full: source not blocked; the blocks in force stay until they end or are lifted",
			"source", source, "max_blocks", b.max, "refused", n-b.warnedAtSeen, "refused_total", n)
		b.warned, b.warnedAtSeen = t, n
	}
	return false
}

// strikeLocked records source's strike. Past 2 × max sources it first forgets one source
// that is not blocked now (its next block starts at block_for again). b.mu is held.
func (b *blocks) strikeLocked(source string, st strike) {
	if _, ok := b.strikes[source]; !ok && len(b.strikes) >= 2*b.max {
		var victim string
		found := false
		for s := range b.strikes {
			if !found {
				victim, found = s, true
			}
			if b.m[s] == nil {
				victim = s
				break
			}
		}
		delete(b.strikes, victim)
	}
	b.strikes[source] = st
}

// add blocks source after an anomaly at now, unless never_block holds it, a block is
// already in force or the table is full. It returns the block's end.
func (b *blocks) add(source, route, kind string, now time.Time, rule string) (time.Time, bool) {
	if neverBlocked(b.cfg.NeverBlockPrefixes(), source) {
		return time.Time{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.m[source]; cur != nil && cur.Until.After(now) {
		return cur.Until, true
	}
	if !b.roomLocked(source, true) {
		return time.Time{}, false
	}
	n := 1
	if st, ok := b.strikes[source]; ok && now.Before(st.until.Add(b.cfg.MaxBlockFor.D())) {
		n = st.n + 1
	}
	d := b.cfg.BlockFor.D()
	for i := 1; i < n && d < b.cfg.MaxBlockFor.D(); i++ {
		d *= 2
	}
	d = min(d, b.cfg.MaxBlockFor.D())
	bl := &Block{Source: source, Since: now, Until: now.Add(d), Strikes: n, Route: route, Kind: kind, Rule: rule, Gateway: b.gateway, own: true}
	b.m[source] = bl
	b.strikeLocked(source, strike{n: n, until: bl.Until})
	b.publishLocked(source)
	b.log.Warn("source blocked", "source", source, "until", bl.Until.UTC().Format(time.RFC3339), "strikes", n, "route", route, "kind", kind, "mode", string(b.cfg.Block))
	if b.fleet != nil {
		b.pending = append(b.pending, source)
		b.kickLoop()
	}
	return bl.Until, true
}

// kickLoop wakes run for a push.
func (b *blocks) kickLoop() {
	select {
	case b.kick <- struct{}{}:
	default:
	}
}

// list returns the blocks in force at now, soonest to end first.
func (b *blocks) list(now time.Time) []Block {
	b.mu.Lock()
	out := make([]Block, 0, len(b.m))
	for _, bl := range b.m {
		if bl.Until.After(now) {
			out = append(out, *bl)
		}
	}
	b.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Until.Equal(out[j].Until) {
			return out[i].Until.Before(out[j].Until)
		}
		return out[i].Source < out[j].Source
	})
	return out
}

func (b *blocks) count(now time.Time) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, bl := range b.m {
		if bl.Until.After(now) {
			n++
		}
	}
	return n
}

// lift removes source's block here and in the fleet. An address may be written in any
// form: "2001:DB8::1", "2001:db8:0:0:0:0:0:1" and "::ffff:192.0.2.1" lift the blocks of
// 2001:db8::1 and 192.0.2.1, the form blocks are kept under.
//
// In the fleet the block's record is replaced by a lift record, which lasts as long as the
// block could (max_block_for, or the block's end if later): the gateway that placed the
// block deletes it on reading the lift, where a record merely missing (Redis restarted or
// flushed) makes it write the block again.
func (b *blocks) lift(ctx context.Context, source string) (bool, error) {
	keys := liftKeys(source, b.cfg.IPv6Prefix)
	now := time.Now()
	end := now.Add(b.cfg.MaxBlockFor.D())
	b.mu.Lock()
	found := false
	for _, k := range keys {
		if bl := b.m[k]; bl != nil {
			found = true
			if bl.Until.After(end) {
				end = bl.Until
			}
		}
		delete(b.m, k)
		delete(b.strikes, k)
	}
	if b.fleet != nil {
		for _, k := range keys {
			b.lifts[k] = liftMark{at: now, end: end}
		}
	}
	b.publishLocked(keys...)
	b.mu.Unlock()
	if b.fleet == nil {
		return found, nil
	}
	ctx, cancel := context.WithTimeout(ctx, fleetCall)
	defer cancel()
	all, err := b.fleet.Blocks(ctx)
	if err != nil {
		b.fleetErrs.Add(1)
		return found, errorf("lifting %s in the fleet (lifted here; other gateways keep it until it ends): %w", keys[len(keys)-1], err)
	}
	for _, k := range keys {
		if rec, ok := parseRecord(k, all[k]); ok && rec.LiftedUntil.IsZero() && rec.Until.After(now) {
			found = true
			if rec.Until.After(end) {
				end = rec.Until
			}
		}
	}
	for _, k := range keys {
		raw, _ := json.Marshal(record{Block: Block{Source: k, Since: now, Gateway: b.gateway}, LiftedUntil: end})
		if err := b.fleet.PutBlock(ctx, k, raw); err != nil {
			b.fleetErrs.Add(1)
			return found, errorf("lifting %s in the fleet (lifted here; other gateways keep it until it ends): %w", k, err)
		}
	}
	b.mu.Lock()
	for _, k := range keys {
		// A later block record of the fleet's made the lift's record last longer.
		if m, ok := b.lifts[k]; ok && m.at.Equal(now) {
			b.lifts[k] = liftMark{at: now, end: end}
		}
	}
	b.mu.Unlock()
	if found {
		b.log.Info("block lifted", "source", keys[len(keys)-1])
	}
	return found, nil
}

// parseRecord reads source's record in the fleet; ok is false for one this version does not
// write (or none).
func parseRecord(source string, raw []byte) (rec record, ok bool) {
	if raw == nil || json.Unmarshal(raw, &rec) != nil || rec.Source != source {
		return record{}, false
	}
	return rec, true
}

// liftKeys returns the texts source's block may be kept under: source itself and, when it
// is an IP address, its canonical form (what the request path records) or, for an IPv6
// address, its prefix of bits; a prefix's canonical text. The canonical one is last.
func liftKeys(source string, bits int) []string {
	if p, err := netip.ParsePrefix(source); err == nil {
		if c := p.Masked().String(); c != source {
			return []string{source, c}
		}
		return []string{source}
	}
	a, err := netip.ParseAddr(source)
	if err != nil {
		return []string{source}
	}
	keys := []string{source}
	if c := a.Unmap().String(); c != source {
		keys = append(keys, c)
	}
	if k, isPrefix := sourceKey(nil, a.Unmap().String(), bits); isPrefix {
		keys = append(keys, string(k))
	}
	return keys
}

// expire drops ended blocks, and the strikes that no longer count.
func (b *blocks) expire(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var ended []string
	for s, bl := range b.m {
		if !bl.Until.After(now) {
			delete(b.m, s)
			ended = append(ended, s)
		}
	}
	for s, st := range b.strikes {
		if now.After(st.until.Add(b.cfg.MaxBlockFor.D())) {
			delete(b.strikes, s)
		}
	}
	for s, m := range b.lifts {
		if !m.end.After(now) {
			delete(b.lifts, s)
		}
	}
	b.publishLocked(ended...)
}

// run expires blocks and, with a fleet, writes new blocks to it and reads its changes,
// until ctx ends.
func (b *blocks) run(ctx context.Context) {
	poll := time.Second
	if b.fleet != nil {
		poll = fleetPoll
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	var version int64 = -1
	lastFull := time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.kick:
		}
		now := time.Now()
		b.expire(now)
		if b.fleet == nil {
			continue
		}
		b.push(ctx)
		cctx, cancel := context.WithTimeout(ctx, fleetCall)
		v, err := b.fleet.BlocksVersion(cctx)
		cancel()
		if err != nil {
			b.fleetErrs.Add(1)
			continue
		}
		if v == version && now.Sub(lastFull) < fleetResync {
			continue
		}
		if b.pull(ctx, now) {
			version, lastFull = v, now
		}
	}
}

// push writes the blocks placed here since the last push. A block lifted (or ended) while
// its record was on the wire is deleted again, so that a late write cannot bring it back.
func (b *blocks) push(ctx context.Context) {
	b.mu.Lock()
	sources := b.pending
	b.pending = nil
	bls := make([]*Block, len(sources))
	recs := make([][]byte, len(sources))
	for i, s := range sources {
		if bl := b.m[s]; bl != nil {
			bls[i] = bl
			recs[i], _ = json.Marshal(bl)
		}
	}
	b.mu.Unlock()
	for i, s := range sources {
		if recs[i] == nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, fleetCall)
		err := b.fleet.PutBlock(cctx, s, recs[i])
		cancel()
		if err != nil {
			b.fleetErrs.Add(1)
		}
		b.mu.Lock()
		cur := b.m[s]
		switch {
		case cur == nil:
			// Lifted (or ended) since it was marshalled: the lift's DeleteBlock may have
			// gone before this write, and a write that failed here may still have landed.
		case err != nil:
			b.pending = append(b.pending, s) // again next tick
			b.log.Warn("could not share a block with the fleet; retrying", "source", s, "err", err)
		case cur == bls[i]:
			cur.shared = true
		}
		// cur is another block: lifted and placed again meanwhile, so pending holds it.
		b.mu.Unlock()
		if cur == nil {
			cctx, cancel := context.WithTimeout(ctx, fleetCall)
			if _, err := b.fleet.DeleteBlock(cctx, s); err != nil {
				b.fleetErrs.Add(1)
				b.log.Warn("could not delete a block lifted while it was being shared; other gateways keep it until it ends", "source", s, "err", err)
			}
			cancel()
		}
	}
}

// pull reads the fleet's blocks and lifts. A new block applies here (room permitting). A
// lift deletes the blocks of its source placed before it. A block missing from the fleet was
// lost by it (Redis restarted or flushed), or lifted by a gateway of an earlier version: a
// block placed here is written again, one placed elsewhere is deleted here (its gateway
// writes it again if it still holds it). Ended records are deleted from the fleet. It reports
// whether the read succeeded.
func (b *blocks) pull(ctx context.Context, now time.Time) bool {
	cctx, cancel := context.WithTimeout(ctx, fleetCall)
	all, err := b.fleet.Blocks(cctx)
	cancel()
	if err != nil {
		b.fleetErrs.Add(1)
		return false
	}
	var ended, changed []string
	b.mu.Lock()
	seen := make(map[string]bool, len(all))
	lifted := map[string]time.Time{}
	refusedNow := map[string]bool{}
	for s, raw := range all {
		rec, ok := parseRecord(s, raw)
		switch {
		case !ok:
			ended = append(ended, s) // not a record this version writes
			continue
		case !rec.LiftedUntil.IsZero():
			if rec.LiftedUntil.After(now) {
				lifted[s] = rec.Since
			} else {
				ended = append(ended, s)
			}
			continue
		case !rec.Until.After(now):
			ended = append(ended, s)
			continue
		}
		seen[s] = true
		if neverBlocked(b.cfg.NeverBlockPrefixes(), s) {
			continue
		}
		if m, ok := b.lifts[s]; ok && !rec.Since.After(m.at) {
			// Lifted here after it was placed: this read of the fleet may have come before
			// the lift's record replaced it.
			continue
		}
		cur := b.m[s]
		if cur == nil || rec.Until.After(cur.Until) {
			// Every pull reads the fleet's records again: a record is counted the first
			// time it finds no room, not at every pull while the table stays full.
			if !b.roomLocked(s, !b.fleetRefused[s]) {
				refusedNow[s] = true
				continue
			}
			bl := rec.Block
			bl.shared, bl.own = true, false
			b.m[s] = &bl
			changed = append(changed, s)
			if st := b.strikes[s]; bl.Strikes >= st.n {
				b.strikeLocked(s, strike{n: bl.Strikes, until: bl.Until})
			}
		} else {
			cur.shared = true
		}
	}
	repush := false
	for s, bl := range b.m {
		if seen[s] {
			continue
		}
		if at, ok := lifted[s]; ok {
			// Kept only when placed here after the lift and not yet written: its write
			// replaces the lift's record.
			if !bl.own || bl.shared || !bl.Since.After(at) {
				delete(b.m, s)
				delete(b.strikes, s)
				changed = append(changed, s)
			}
			continue
		}
		switch {
		case bl.own && bl.shared: // the fleet lost it: write it again
			bl.shared = false
			b.pending = append(b.pending, s)
			repush = true
		case bl.shared:
			delete(b.m, s)
			delete(b.strikes, s)
			changed = append(changed, s)
		}
		// Placed here and not yet written: pending holds it.
	}
	b.fleetRefused = refusedNow
	b.publishLocked(changed...)
	b.mu.Unlock()
	if repush {
		b.kickLoop()
	}
	for _, s := range ended {
		cctx, cancel := context.WithTimeout(ctx, fleetCall)
		_, _ = b.fleet.DeleteBlock(cctx, s)
		cancel()
	}
	return true
}
