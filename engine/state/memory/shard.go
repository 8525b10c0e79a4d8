package memory

import "sync"

type kind uint8

const (
	kindRate kind = iota + 1
	kindInFlight
	kindDelivered
)

// bucketShift sets the width of an expiry bucket: 2^20 µs, about one second. Entries are
// dropped and evicted a bucket at a time, oldest bucket first; within a bucket, in the order
// they entered it.
const bucketShift = 20

// nilSlot ends a bucket's list.
const nilSlot = -1

// entry is one key's state. Entries live in the shard's arena and are referred to by index,
// so a new key costs no allocation of its own. Each live entry is on the list of the expiry
// bucket exp>>bucketShift.
type entry struct {
	key        string
	exp        int64 // unix µs; the entry is dead when exp <= now
	tat, frac  int64 // GCRA state, rate entries only
	prev, next int32 // neighbours in its expiry bucket's list
	kind       kind
}

// bucket is the list of the entries expiring in one bucketShift-wide span, and its place in
// the shard's order heap. A bucket exists only while it holds entries.
type bucket struct {
	id         int64
	head, tail int32
	pos        int32 // index in shard.order
}

// shard is guarded by mu. Both maps index into ents. buckets holds each expiry bucket's
// list; order is a min-heap of the buckets by id, so the entries nearest expiry are found
// without ordering the entries themselves: inserting, moving and removing an entry is a
// constant number of steps whatever the shard holds, besides a heap step over the buckets
// (about one a second of expiries) when a bucket is made or emptied.
type shard struct {
	mu        sync.Mutex
	rate      map[string]int32
	dedupe    map[string]int32
	ents      []entry
	free      []int32
	buckets   map[int64]*bucket
	order     []*bucket
	spare     []*bucket // emptied buckets, reused
	limit     int       // entries
	byteLimit int64     // bytes, as entryBytes counts them
	bytes     int64
	evictions uint64
	_         [64]byte // keep neighbouring shards' locks off one cache line
}

func (sh *shard) init(limit int, byteLimit int64) {
	if limit < 1 {
		limit = 1
	}
	sh.limit, sh.byteLimit, sh.bytes = limit, byteLimit, 0
	sh.rate = make(map[string]int32)
	sh.dedupe = make(map[string]int32)
	sh.buckets = make(map[int64]*bucket)
	sh.ents, sh.free, sh.order, sh.spare = nil, nil, nil, nil
}

// lookup finds a live entry; an expired one is dropped and reported absent.
func (sh *shard) lookup(m map[string]int32, key string, now int64) (int32, bool) {
	i, ok := m[key]
	if !ok {
		return 0, false
	}
	if sh.ents[i].exp <= now {
		sh.remove(i)
		return 0, false
	}
	return i, true
}

// sweep drops up to two expired entries so memory is returned without a background goroutine:
// every write removes more expired entries than it can add, once their bucket has passed.
func (sh *shard) sweep(now int64) {
	for range 2 {
		i := sh.front()
		if i == nilSlot || sh.ents[i].exp > now {
			return
		}
		sh.remove(i)
	}
}

// entryBytes is what the byte bound counts for an entry with key.
func entryBytes(key string) int64 { return int64(len(key)) + EntryOverhead }

// insert adds key (absent from m) and returns its slot. A shard that is full (by entries, or
// by bytes with the new entry) first gives up the entries of its earliest expiry bucket until
// it has room: expired ones if there are any, else live ones, counted as evictions.
func (sh *shard) insert(m map[string]int32, key string, k kind, exp, now int64) int32 {
	cost := entryBytes(key)
	for len(sh.rate)+len(sh.dedupe) >= sh.limit || sh.bytes+cost > sh.byteLimit {
		victim := sh.front()
		if victim == nilSlot {
			break
		}
		if sh.ents[victim].exp > now {
			sh.evictions++
		}
		sh.remove(victim)
	}
	sh.bytes += cost
	var i int32
	if n := len(sh.free); n > 0 {
		i = sh.free[n-1]
		sh.free = sh.free[:n-1]
	} else {
		sh.ents = append(sh.ents, entry{})
		i = int32(len(sh.ents) - 1)
	}
	sh.ents[i] = entry{key: key, exp: exp, kind: k}
	m[key] = i
	sh.link(i)
	return i
}

func (sh *shard) remove(i int32) {
	e := &sh.ents[i]
	sh.bytes -= entryBytes(e.key)
	if e.kind == kindRate {
		delete(sh.rate, e.key)
	} else {
		delete(sh.dedupe, e.key)
	}
	sh.unlink(i)
	*e = entry{} // drop the key string so it can be collected
	sh.free = append(sh.free, i)
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

// link appends entry i to the list of its expiry bucket, making the bucket if need be.
func (sh *shard) link(i int32) {
	e := &sh.ents[i]
	id := e.exp >> bucketShift
	b := sh.buckets[id]
	if b == nil {
		if n := len(sh.spare); n > 0 {
			b = sh.spare[n-1]
			sh.spare = sh.spare[:n-1]
		} else {
			b = new(bucket)
		}
		*b = bucket{id: id, head: nilSlot, tail: nilSlot, pos: int32(len(sh.order))}
		sh.buckets[id] = b
		sh.order = append(sh.order, b)
		sh.up(len(sh.order) - 1)
	}
	e.prev, e.next = b.tail, nilSlot
	if b.tail != nilSlot {
		sh.ents[b.tail].next = i
	} else {
		b.head = i
	}
	b.tail = i
}

// unlink takes entry i off its bucket's list, and drops the bucket when it empties.
func (sh *shard) unlink(i int32) {
	e := &sh.ents[i]
	b := sh.buckets[e.exp>>bucketShift]
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
	if b.head == nilSlot {
		sh.dropBucket(b)
	}
}

// dropBucket takes an empty bucket out of the map and the heap and keeps it for reuse.
func (sh *shard) dropBucket(b *bucket) {
	delete(sh.buckets, b.id)
	p, last := int(b.pos), len(sh.order)-1
	if p != last {
		sh.swap(p, last)
	}
	sh.order[last] = nil
	sh.order = sh.order[:last]
	if p != last && !sh.down(p) {
		sh.up(p)
	}
	sh.spare = append(sh.spare, b)
}

// front returns the first entry of the earliest bucket, or nilSlot when the shard is empty.
func (sh *shard) front() int32 {
	if len(sh.order) == 0 {
		return nilSlot
	}
	return sh.order[0].head
}

func (sh *shard) swap(a, b int) {
	h := sh.order
	h[a], h[b] = h[b], h[a]
	h[a].pos, h[b].pos = int32(a), int32(b)
}

func (sh *shard) up(j int) {
	h := sh.order
	for j > 0 {
		p := (j - 1) / 2
		if h[p].id <= h[j].id {
			return
		}
		sh.swap(j, p)
		j = p
	}
}

// down reports whether the element moved.
func (sh *shard) down(j int) bool {
	h, start := sh.order, j
	for {
		l := 2*j + 1
		if l >= len(h) {
			break
		}
		c := l
		if r := l + 1; r < len(h) && h[r].id < h[l].id {
			c = r
		}
		if h[j].id <= h[c].id {
			break
		}
		sh.swap(j, c)
		j = c
	}
	return j > start
}
