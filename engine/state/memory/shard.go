package memory

import "sync"

type kind uint8

const (
	kindRate kind = iota + 1
	kindInFlight
	kindDelivered
)

// entry is one key's state. Entries live in the shard's arena and are referred to by index,
// so a new key costs no allocation of its own.
type entry struct {
	key       string
	exp       int64 // unix µs; the entry is dead when exp <= now
	tat, frac int64 // GCRA state, rate entries only
	pos       int32 // index in the expiry heap
	kind      kind
}

// hnode is one heap element. It repeats the entry's expiry so that sifting compares
// neighbouring heap memory instead of chasing into the arena (the eviction path is the
// store's hottest loop once it is full).
type hnode struct {
	exp  int64
	slot int32
}

// shard is guarded by mu. Both maps index into ents; heap orders live slots by exp.
type shard struct {
	mu        sync.Mutex
	rate      map[string]int32
	dedupe    map[string]int32
	ents      []entry
	free      []int32
	heap      []hnode
	limit     int   // entries
	byteLimit int64 // bytes, as entryBytes counts them
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
	sh.ents, sh.free, sh.heap = nil, nil, nil
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
// every write removes more expired entries than it can add.
func (sh *shard) sweep(now int64) {
	for range 2 {
		if len(sh.heap) == 0 || sh.heap[0].exp > now {
			return
		}
		sh.remove(sh.heap[0].slot)
	}
}

// entryBytes is what the byte bound counts for an entry with key.
func entryBytes(key string) int64 { return int64(len(key)) + EntryOverhead }

// insert adds key (absent from m) and returns its slot. A shard that is full (by entries, or
// by bytes with the new entry) first gives up its entries closest to expiry until it has
// room: expired ones if there are any, else live ones, counted as evictions.
func (sh *shard) insert(m map[string]int32, key string, k kind, exp, now int64) int32 {
	cost := entryBytes(key)
	for len(sh.heap) > 0 && (len(sh.rate)+len(sh.dedupe) >= sh.limit || sh.bytes+cost > sh.byteLimit) {
		victim := sh.heap[0]
		if victim.exp > now {
			sh.evictions++
		}
		sh.remove(victim.slot)
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
	sh.ents[i] = entry{key: key, exp: exp, kind: k, pos: int32(len(sh.heap))}
	m[key] = i
	sh.heap = append(sh.heap, hnode{exp: exp, slot: i})
	sh.up(len(sh.heap) - 1)
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
	p := int(e.pos)
	last := len(sh.heap) - 1
	if p != last {
		sh.swap(p, last)
	}
	sh.heap = sh.heap[:last]
	if p != last {
		if !sh.down(p) {
			sh.up(p)
		}
	}
	*e = entry{} // drop the key string so it can be collected
	sh.free = append(sh.free, i)
}

func (sh *shard) setExp(i int32, exp int64) {
	e := &sh.ents[i]
	old := e.exp
	e.exp = exp
	sh.heap[e.pos].exp = exp
	if exp < old {
		sh.up(int(e.pos))
	} else if exp > old {
		sh.down(int(e.pos))
	}
}

func (sh *shard) less(a, b int) bool {
	return sh.heap[a].exp < sh.heap[b].exp
}

func (sh *shard) swap(a, b int) {
	h := sh.heap
	h[a], h[b] = h[b], h[a]
	sh.ents[h[a].slot].pos = int32(a)
	sh.ents[h[b].slot].pos = int32(b)
}

func (sh *shard) up(j int) {
	for j > 0 {
		p := (j - 1) / 2
		if !sh.less(j, p) {
			return
		}
		sh.swap(j, p)
		j = p
	}
}

// down reports whether the element moved.
func (sh *shard) down(j int) bool {
	start, n := j, len(sh.heap)
	for {
		l := 2*j + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && sh.less(r, l) {
			c = r
		}
		if !sh.less(c, j) {
			break
		}
		sh.swap(j, c)
		j = c
	}
	return j > start
}
