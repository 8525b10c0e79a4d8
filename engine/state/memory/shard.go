package memory

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/hookwall/hookwall/engine/state/internal/gcra"
)

type kind uint8

const (
	kindRate kind = iota + 1
	kindInFlight
	kindDelivered
)

// bucketShift sets the width of an expiry bucket: 2^20 µs, about one second. Entries are
// dropped and evicted a bucket at a time, oldest bucket first (each of the shard's two queues
// in its own order); within a bucket, in the order they entered it.
const bucketShift = 20

// nilSlot ends a bucket's list.
const nilSlot = -1

// The shard keeps two queues of expiry buckets: the rate entries', and the dedupe entries'
// (claims in flight and delivered markers). Eviction gives up a live rate entry before any
// live dedupe entry, whatever their expiries: losing a rate entry only starts its limiter
// fresh, losing a delivered marker lets a replay of its delivery through.
const (
	qRate   = 0
	qDedupe = 1
)

// queueOf is the index in shard.q of the queue that holds the entries of kind k.
func queueOf(k kind) int {
	if k == kindRate {
		return qRate
	}
	return qDedupe
}

// entry is one key's place in the store. Entries live in the shard's arena and are referred to
// by index, so a new dedupe key costs no allocation of its own. Each entry is on the list of the
// expiry bucket exp>>bucketShift in its kind's queue (queueOf). A rate entry's GCRA state is in its rateCell, whose expiry
// may be later than exp: compare-and-swap updates do not move the entry, which is moved when
// it comes up for sweeping or eviction (syncRate).
type entry struct {
	key        string
	exp        int64  // unix µs; the entry is dead when exp <= now
	prev, next int32  // neighbours in its expiry bucket's list
	bkt        int32  // its expiry bucket's index in its queue's bks
	h          uint32 // a dedupe entry's hash in shard.dedupe
	kind       kind
}

// maxScaled bounds a rate cell's scaled time: (now-base)×l stays at most this, so a state
// (at most 2^52 further, see gcra) never overflows.
const maxScaled = 1 << 61

// rateCell is a rate key's GCRA state, updated by compare-and-swap under the shard's read lock:
// v is (tat-base)×l + frac, the theoretical arrival time in units of 1/l µs from base. base,
// l and slot change only under the shard's write lock (rmu) and mu.
type rateCell struct {
	v    atomic.Int64
	base int64 // unix µs
	l    int64 // the gcra.Limit L the state is counted in
	slot int32 // the key's entry
}

// state returns the stored (tat, frac).
func (c *rateCell) state() (tat, frac int64) {
	v := c.v.Load()
	return c.base + v/c.l, v % c.l
}

// exp is when the state is back to a fresh key's: the ceiling of the arrival time, in µs.
func (c *rateCell) exp() int64 {
	return c.base + (c.v.Load()+c.l-1)/c.l
}

// set stores (tat, frac), counted in l, from base now. tat >= now.
func (c *rateCell) set(l, now, tat, frac int64) {
	c.base, c.l = now, l
	c.v.Store((tat-now)*l + frac)
}

// decide applies one request under lim to the cell by compare-and-swap. ok is false when the
// cell cannot count now exactly (now before its base, or too far after it): the caller then
// rebases it under the write lock.
func (c *rateCell) decide(lim gcra.Limit, now int64) (r gcra.Result, ok bool) {
	rel := now - c.base
	if rel < 0 || rel > maxScaled/c.l {
		return r, false
	}
	for {
		v := c.v.Load()
		r = lim.Decide(now, c.base+v/c.l, v%c.l)
		if !r.Allowed || c.v.CompareAndSwap(v, (r.Tat-c.base)*c.l+r.Frac) {
			return r, true
		}
	}
}

// bucket is the list of the entries expiring in one bucketShift-wide span, and its place in
// its queue's order heap. A bucket that empties is kept until it reaches the front of the
// heap, where front drops it: the bucket of a claim's in-flight expiry empties whenever the
// shard's claims in flight are settled and fills again with the next claim, so dropping and
// making it for every request would cost two map operations and two heap steps. Buckets live
// in the queue's bucket arena and are referred to by index, so making one costs no
// allocation.
type bucket struct {
	id         int64
	head, tail int32
	pos        int32 // index in shard.order
}

// queue is one kind's expiry buckets (the rate entries', or the dedupe entries'). buckets holds
// each expiry bucket's list; order is a min-heap of the buckets by id, so the entries nearest
// expiry are found without ordering the entries themselves: inserting, moving and removing an
// entry is a constant number of steps whatever the shard holds, besides a heap step over the
// buckets (about one a second of expiries) when a bucket is made or dropped.
type queue struct {
	buckets map[int64]int32 // bucket id → index in bks
	bks     []bucket
	bfree   []int32 // free indices in bks
	order   []int32 // indices in bks, a min-heap by bucket id
	// sweepAt is when the earliest bucket's span starts (math.MaxInt64 when there is none):
	// before it nothing in the queue has expired, and sweep reads no bucket or entry to know
	// it.
	sweepAt int64
	// hot holds the two buckets link used last (nilSlot when none), tried before the map:
	// a request links its claim into the in-flight bucket and, settled, into the delivered
	// one, the same two buckets for about a second, and the map lookup, its hashing and
	// probing a bucket array out of cache, cost most of a link. dropBucket clears a dropped
	// one, so a hot index always names a live bucket.
	hot     [2]int32
	hotNext uint8 // the slot of hot a miss replaces: the one not used last
}

func (q *queue) init() {
	q.buckets = make(map[int64]int32)
	q.hot, q.hotNext = [2]int32{nilSlot, nilSlot}, 0
	q.bks, q.bfree, q.order = nil, nil, nil
	q.sweepAt = math.MaxInt64
}

// shard is guarded by mu. cells and dedupe index into ents; q holds the entries' expiry order,
// the rate entries' and the dedupe entries' apart (qRate, qDedupe), so that eviction finds
// the rate entry nearest expiry as it finds the dedupe entry nearest expiry.
//
// rmu guards cells (and each cell's base and l) for the rate keys' shared path: it is
// write-locked, always inside mu, only to add or remove a cell or rebase one, so requests under
// one rate key read-lock it and update the cell at once.
type shard struct {
	mu        sync.Mutex
	rmu       sync.RWMutex
	cells     map[string]*rateCell
	dedupe    index
	ents      []entry
	free      []int32
	q         [2]queue
	limit     int   // entries
	byteLimit int64 // bytes, as entryBytes counts them
	bytes     int64
	// claims and claimBytes count the in-flight claims among the entries (bytes as entryBytes
	// counts them), which eviction passes over while they are at most half the shard.
	claims     int
	claimBytes int64
	held       []int32 // insert's scratch: the claims it passed over
	evictions  uint64
	// dedupeEvictions counts, of evictions, the live dedupe entries evicted (a delivered
	// marker, or a claim in flight once claims hold more than half the shard): each opens a
	// replay window before its TTL. Rate entries go first, so it grows only when a shard
	// holds no rate entry.
	dedupeEvictions uint64
	_               [64]byte // keep neighbouring shards' locks off one cache line
}

func (sh *shard) init(limit int, byteLimit int64) {
	if limit < 1 {
		limit = 1
	}
	sh.limit, sh.byteLimit, sh.bytes = limit, byteLimit, 0
	sh.rmu.Lock()
	sh.cells = make(map[string]*rateCell)
	sh.rmu.Unlock()
	sh.dedupe = index{}
	sh.q[qRate].init()
	sh.q[qDedupe].init()
	sh.ents, sh.free = nil, nil
}

// lookup finds key's live dedupe entry (h is its hash, Store.locate); an expired one is
// dropped and reported absent.
func (sh *shard) lookup(key string, h uint32, now int64) (int32, bool) {
	i := sh.dedupe.get(sh.ents, key, h)
	if i < 0 {
		return 0, false
	}
	if sh.ents[i].exp <= now {
		sh.remove(i)
		return 0, false
	}
	return i, true
}

// sweep drops up to two expired entries so memory is returned without a background goroutine:
// every write removes more expired entries than it can add, once their bucket has passed. A
// rate entry whose cell was updated since it was placed is moved to its bucket instead.
func (sh *shard) sweep(now int64) {
	for range 2 {
		if now < sh.q[qRate].sweepAt && now < sh.q[qDedupe].sweepAt {
			return
		}
		i := sh.expired(now)
		if i == nilSlot {
			return
		}
		sh.drop(i, now)
	}
}

// expired returns the first entry of the earliest bucket of either queue when it has expired
// at now, the rate queue's first, else nilSlot.
func (sh *shard) expired(now int64) int32 {
	for qi := range sh.q {
		if q := &sh.q[qi]; now >= q.sweepAt {
			if i := q.front(); i != nilSlot && sh.ents[i].exp <= now {
				return i
			}
		}
	}
	return nilSlot
}

// drop removes entry i, unless it is a rate entry whose cell has moved on since the entry was
// placed and is live at now: that one is moved to the bucket of the cell's expiry instead, and
// drop reports false. Both are decided under rmu's write lock, so no update slips in between.
func (sh *shard) drop(i int32, now int64) bool {
	e := &sh.ents[i]
	if e.kind != kindRate {
		sh.remove(i)
		return true
	}
	sh.rmu.Lock()
	if exp := sh.cells[e.key].exp(); exp > e.exp && exp > now {
		sh.rmu.Unlock()
		sh.setExp(i, exp)
		return false
	}
	delete(sh.cells, e.key)
	sh.rmu.Unlock()
	sh.remove(i)
	return true
}

// entryBytes is what the byte bound counts for an entry with key.
func entryBytes(key string) int64 { return int64(len(key)) + EntryOverhead }

// insert adds key (for a dedupe key, absent from dedupe and hashed to h; a rate key's cell
// the caller adds) and returns its slot. A shard that is full (by entries, or by bytes with
// the new entry) first gives up entries until it has room: expired ones if the earliest bucket
// of either queue holds one, else live ones, counted as evictions: the rate entries of the
// earliest bucket of the rate queue while there are any, whatever their expiry, and only then
// the dedupe entries of the earliest bucket of the dedupe queue, counted in dedupeEvictions
// too. A rate entry lost starts its limiter fresh; a delivered marker lost lets a replay of
// its delivery through, so a rate limit whose entries outlive the dedupe TTL must not make
// the markers go first. A live claim in flight is passed over while the claims hold at most half the shard (by entries and
// by bytes): it expires sooner than any delivered marker, so it would always go first, and the
// provider's retry of a slow delivery would then be forwarded while the first copy still is
// (in flight must answer 409). The gateway settles every claim once its upstream answers, so
// claims are as many as its requests in flight; past half the shard they go as the others do,
// and the bound holds whatever a caller leaves unsettled. Each insert into a full shard steps
// past the claims at the front of its expiry order, a few steps for a shard's share of the
// requests in flight.
func (sh *shard) insert(key string, h uint32, k kind, exp, now int64) int32 {
	cost := entryBytes(key)
	held := sh.held[:0] // claims in flight passed over, linked again once there is room
	for len(sh.cells)+sh.dedupe.n >= sh.limit || sh.bytes+cost > sh.byteLimit {
		victim := sh.expired(now)
		if victim == nilSlot {
			if victim = sh.q[qRate].front(); victim == nilSlot {
				victim = sh.q[qDedupe].front()
			}
		}
		if victim == nilSlot {
			break
		}
		e := &sh.ents[victim]
		if e.kind == kindInFlight && e.exp > now && 2*sh.claims <= sh.limit && 2*sh.claimBytes <= sh.byteLimit {
			sh.unlink(victim)
			held = append(held, victim)
			continue
		}
		if exp, k := e.exp, e.kind; sh.drop(victim, now) && exp > now {
			sh.evictions++
			if k != kindRate {
				sh.dedupeEvictions++
			}
		}
	}
	for _, i := range held {
		sh.link(i)
	}
	sh.held = held[:0]
	sh.bytes += cost
	i := slot(&sh.ents, &sh.free)
	sh.ents[i] = entry{key: key, h: h}
	sh.setKind(i, k)
	sh.ents[i].exp = exp
	if k != kindRate {
		sh.dedupe.put(h, i)
	}
	sh.link(i)
	return i
}

// slot returns an index of arena to fill: the last one freed (popped from free), or a new
// element at the end. Entries and buckets share it.
func slot[T any](arena *[]T, free *[]int32) int32 {
	if n := len(*free); n > 0 {
		i := (*free)[n-1]
		*free = (*free)[:n-1]
		return i
	}
	var zero T
	*arena = append(*arena, zero)
	return int32(len(*arena) - 1)
}

// remove takes entry i out of the arena, its bucket and the dedupe index; a rate entry's cell is
// the caller's (drop) to delete.
func (sh *shard) remove(i int32) {
	e := &sh.ents[i]
	sh.bytes -= entryBytes(e.key)
	if e.kind != kindRate {
		sh.dedupe.del(e.h, i)
	}
	sh.unlink(i) // before setKind: the kind names the entry's queue
	sh.setKind(i, 0)
	*e = entry{} // drop the key string so it can be collected
	sh.free = append(sh.free, i)
}

// setKind makes entry i of kind k (0 as it is removed), keeping the claims' counts. An entry
// linked in a queue changes kind only within it (in flight to delivered).
func (sh *shard) setKind(i int32, k kind) {
	e := &sh.ents[i]
	if e.kind == kindInFlight {
		sh.claims--
		sh.claimBytes -= entryBytes(e.key)
	}
	if k == kindInFlight {
		sh.claims++
		sh.claimBytes += entryBytes(e.key)
	}
	e.kind = k
}

// setExp moves entry i to expire at exp.
func (sh *shard) setExp(i int32, exp int64) {
	e := &sh.ents[i]
	if exp>>bucketShift == e.exp>>bucketShift {
		e.exp = exp
		return
	}
	sh.unlink(i)
	e.exp = exp
	sh.link(i)
}

// link appends entry i to the list of its expiry bucket in its kind's queue, making the
// bucket if need be.
func (sh *shard) link(i int32) {
	e := &sh.ents[i]
	q := &sh.q[queueOf(e.kind)]
	bi := q.bucketFor(e.exp >> bucketShift)
	b := &q.bks[bi]
	e.bkt, e.prev, e.next = bi, b.tail, nilSlot
	if b.tail != nilSlot {
		sh.ents[b.tail].next = i
	} else {
		b.head = i
	}
	b.tail = i
}

// bucketFor returns the index of bucket id, making the bucket if need be.
func (q *queue) bucketFor(id int64) int32 {
	for k, bi := range q.hot {
		if bi != nilSlot && q.bks[bi].id == id {
			q.hotNext = uint8(1 - k)
			return bi
		}
	}
	bi, ok := q.buckets[id]
	if !ok {
		bi = slot(&q.bks, &q.bfree)
		q.bks[bi] = bucket{id: id, head: nilSlot, tail: nilSlot, pos: int32(len(q.order))}
		q.buckets[id] = bi
		q.order = append(q.order, bi)
		q.up(len(q.order) - 1)
		q.frontMoved()
	}
	q.hot[q.hotNext] = bi
	q.hotNext ^= 1
	return bi
}

// unlink takes entry i off its bucket's list; an emptied bucket stays (see bucket).
func (sh *shard) unlink(i int32) {
	e := &sh.ents[i]
	bi := e.bkt
	b := &sh.q[queueOf(e.kind)].bks[bi]
	if e.prev != nilSlot {
		sh.ents[e.prev].next = e.next
	} else {
		b.head = e.next
	}
	if e.next != nilSlot {
		sh.ents[e.next].prev = e.prev
	} else {
		b.tail = e.prev
	}
	e.prev, e.next = nilSlot, nilSlot
}

// dropBucket takes an empty bucket out of the map and the heap and frees its index.
func (q *queue) dropBucket(bi int32) {
	delete(q.buckets, q.bks[bi].id)
	for k := range q.hot {
		if q.hot[k] == bi {
			q.hot[k] = nilSlot
		}
	}
	p, last := int(q.bks[bi].pos), len(q.order)-1
	if p != last {
		q.swap(p, last)
	}
	q.order = q.order[:last]
	if p != last && !q.down(p) {
		q.up(p)
	}
	q.bfree = append(q.bfree, bi)
	q.frontMoved()
}

// frontMoved sets sweepAt after the earliest bucket may have changed.
func (q *queue) frontMoved() {
	if len(q.order) == 0 {
		q.sweepAt = math.MaxInt64
		return
	}
	q.sweepAt = q.bks[q.order[0]].id << bucketShift
}

// front returns the first entry of the earliest bucket that holds one, or nilSlot when the
// queue is empty; the empty buckets before it are dropped.
func (q *queue) front() int32 {
	for len(q.order) > 0 {
		bi := q.order[0]
		if h := q.bks[bi].head; h != nilSlot {
			return h
		}
		q.dropBucket(bi)
	}
	return nilSlot
}

// less compares the ids of the buckets at heap positions a and b.
func (q *queue) less(a, b int) bool {
	return q.bks[q.order[a]].id < q.bks[q.order[b]].id
}

func (q *queue) swap(a, b int) {
	h := q.order
	h[a], h[b] = h[b], h[a]
	q.bks[h[a]].pos, q.bks[h[b]].pos = int32(a), int32(b)
}

func (q *queue) up(j int) {
	for j > 0 {
		p := (j - 1) / 2
		if !q.less(j, p) {
			return
		}
		q.swap(j, p)
		j = p
	}
}

// down reports whether the element moved.
func (q *queue) down(j int) bool {
	start, n := j, len(q.order)
	for {
		l := 2*j + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && q.less(r, l) {
			c = r
		}
		if !q.less(c, j) {
			break
		}
		q.swap(j, c)
		j = c
	}
	return j > start
}
