package watch

import (
	"context"
	"encoding/json"
	"log/slog"
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

	shared bool // written to the fleet, or read from it
}

// fleetPoll is how often a gateway checks the fleet's version of the blocks; fleetResync
// how often it reads them all regardless (a restarted Redis loses the version).
const (
	fleetPoll   = 250 * time.Millisecond
	fleetResync = 10 * time.Second
	fleetCall   = 2 * time.Second
)

type strike struct {
	n     int
	until time.Time
}

// blocks holds the blocks in force. Requests read view, an immutable map replaced on every
// change; changes (rare) take mu.
type blocks struct {
	cfg     *config.Watch
	fleet   Fleet
	gateway string
	log     *slog.Logger

	view atomic.Pointer[map[string]int64] // source → until, unix ns; nil when empty

	mu      sync.Mutex
	m       map[string]*Block
	strikes map[string]strike
	pending []string // placed here, not yet written to the fleet
	kick    chan struct{}

	fleetErrs atomic.Uint64
}

func newBlocks(cfg *config.Watch, fleet Fleet, gateway string, log *slog.Logger) *blocks {
	return &blocks{cfg: cfg, fleet: fleet, gateway: gateway, log: log, m: map[string]*Block{}, strikes: map[string]strike{}, kick: make(chan struct{}, 1)}
}

// lookup returns source's block end while one is in force at now.
func (b *blocks) lookup(source string, now int64) (until int64, ok bool) {
	v := b.view.Load()
	if v == nil {
		return 0, false
	}
	until, ok = (*v)[source]
	return until, ok && now < until
}

// publishLocked replaces the request path's view. b.mu is held.
func (b *blocks) publishLocked() {
	if len(b.m) == 0 {
		b.view.Store(nil)
		return
	}
	v := make(map[string]int64, len(b.m))
	for s, bl := range b.m {
		v[s] = bl.Until.UnixNano()
	}
	b.view.Store(&v)
}

// add blocks source after an anomaly at now, unless never_block holds it or a block is
// already in force. It returns the block's end.
func (b *blocks) add(source, route, kind string, now time.Time, rule string) (time.Time, bool) {
	if neverBlocked(b.cfg.NeverBlockPrefixes(), source) {
		return time.Time{}, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if cur := b.m[source]; cur != nil && cur.Until.After(now) {
		return cur.Until, true
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
	bl := &Block{Source: source, Since: now, Until: now.Add(d), Strikes: n, Route: route, Kind: kind, Rule: rule, Gateway: b.gateway}
	b.m[source] = bl
	b.strikes[source] = strike{n: n, until: bl.Until}
	b.publishLocked()
	b.log.Warn("source blocked", "source", source, "until", bl.Until.UTC().Format(time.RFC3339), "strikes", n, "route", route, "kind", kind, "mode", string(b.cfg.Block))
	if b.fleet != nil {
		b.pending = append(b.pending, source)
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return bl.Until, true
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
func (b *blocks) lift(ctx context.Context, source string) (bool, error) {
	keys := liftKeys(source)
	b.mu.Lock()
	found := false
	for _, k := range keys {
		found = found || b.m[k] != nil
		delete(b.m, k)
		delete(b.strikes, k)
	}
	b.publishLocked()
	b.mu.Unlock()
	if b.fleet == nil {
		return found, nil
	}
	ctx, cancel := context.WithTimeout(ctx, fleetCall)
	defer cancel()
	for _, k := range keys {
		shared, err := b.fleet.DeleteBlock(ctx, k)
		if err != nil {
			b.fleetErrs.Add(1)
			return found, errorf("lifting %s in the fleet (lifted here; other gateways keep it until it ends): %w", k, err)
		}
		found = found || shared
	}
	if found {
		b.log.Info("block lifted", "source", keys[len(keys)-1])
	}
	return found, nil
}

// liftKeys returns the texts source's block may be kept under: source itself and, when it
// is an IP address, its canonical form (what the request path records), last.
func liftKeys(source string) []string {
	a, err := netip.ParseAddr(source)
	if err != nil {
		return []string{source}
	}
	if c := a.Unmap().String(); c != source {
		return []string{source, c}
	}
	return []string{source}
}

// expire drops ended blocks.
func (b *blocks) expire(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	changed := false
	for s, bl := range b.m {
		if !bl.Until.After(now) {
			delete(b.m, s)
			changed = true
		}
	}
	for s, st := range b.strikes {
		if now.After(st.until.Add(b.cfg.MaxBlockFor.D())) {
			delete(b.strikes, s)
		}
	}
	if changed {
		b.publishLocked()
	}
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

// pull reads the fleet's blocks: new ones apply here, shared ones gone from the fleet were
// lifted elsewhere, ended ones are deleted from it. It reports whether the read succeeded.
func (b *blocks) pull(ctx context.Context, now time.Time) bool {
	cctx, cancel := context.WithTimeout(ctx, fleetCall)
	all, err := b.fleet.Blocks(cctx)
	cancel()
	if err != nil {
		b.fleetErrs.Add(1)
		return false
	}
	var ended []string
	b.mu.Lock()
	seen := make(map[string]bool, len(all))
	for s, raw := range all {
		var rec Block
		if json.Unmarshal(raw, &rec) != nil || rec.Source != s {
			ended = append(ended, s) // not a record this version writes
			continue
		}
		if !rec.Until.After(now) {
			ended = append(ended, s)
			continue
		}
		seen[s] = true
		if neverBlocked(b.cfg.NeverBlockPrefixes(), s) {
			continue
		}
		cur := b.m[s]
		if cur == nil || rec.Until.After(cur.Until) {
			rec.shared = true
			b.m[s] = &rec
			if st := b.strikes[s]; rec.Strikes >= st.n {
				b.strikes[s] = strike{n: rec.Strikes, until: rec.Until}
			}
		} else {
			cur.shared = true
		}
	}
	for s, bl := range b.m {
		if bl.shared && !seen[s] {
			delete(b.m, s) // lifted by another gateway
			delete(b.strikes, s)
		}
	}
	b.publishLocked()
	b.mu.Unlock()
	for _, s := range ended {
		cctx, cancel := context.WithTimeout(ctx, fleetCall)
		_, _ = b.fleet.DeleteBlock(cctx, s)
		cancel()
	}
	return true
}
