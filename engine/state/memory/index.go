package memory

// index maps a shard's dedupe keys to their entries: open addressing with linear probing on
// the high half of the key's hash, the hash whose low bits chose the shard. So a call of the
// store hashes its key once, and Admit's miss (the usual case: a new delivery id) and the
// insert after it probe the same few slots, where a Go map hashed the key for each of the two
// operations and searched twice. The slots are kept at most half full; a removal shifts the
// slots after it back (no tombstones), so a lookup's probe ends at the first empty slot.
type index struct {
	slots []islot // a power of two long, or nil
	n     int     // occupied slots
}

// islot is one slot: the key's hash and its entry's index plus one (0: empty).
type islot struct {
	h   uint32
	ent int32
}

// minIndex is the slot count a shard's index starts with.
const minIndex = 16

// get returns the index of key's entry in ents, or -1.
func (x *index) get(ents []entry, key string, h uint32) int32 {
	if x.n == 0 {
		return -1
	}
	mask := uint32(len(x.slots) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		s := x.slots[p]
		if s.ent == 0 {
			return -1
		}
		if s.h == h && ents[s.ent-1].key == key {
			return s.ent - 1
		}
	}
}

// put records entry i under hash h; the key must be absent.
func (x *index) put(h uint32, i int32) {
	if 2*(x.n+1) > len(x.slots) {
		x.grow()
	}
	x.place(islot{h: h, ent: i + 1})
	x.n++
}

// place puts s in the first empty slot from its hash's position.
func (x *index) place(s islot) {
	mask := uint32(len(x.slots) - 1)
	p := s.h & mask
	for x.slots[p].ent != 0 {
		p = (p + 1) & mask
	}
	x.slots[p] = s
}

// grow doubles the slots (or makes the first ones) and places every entry again.
func (x *index) grow() {
	old := x.slots
	x.slots = make([]islot, max(minIndex, 2*len(old)))
	for _, s := range old {
		if s.ent != 0 {
			x.place(s)
		}
	}
}

// del removes entry i, recorded under hash h. Each slot after it up to the next empty one is
// moved back into the hole when its probe would otherwise have to pass the hole: every key
// stays reachable from its hash's position without crossing an empty slot.
func (x *index) del(h uint32, i int32) {
	mask := uint32(len(x.slots) - 1)
	p := h & mask
	for x.slots[p].ent != i+1 {
		p = (p + 1) & mask
	}
	for q := (p + 1) & mask; ; q = (q + 1) & mask {
		s := x.slots[q]
		if s.ent == 0 {
			break
		}
		// s sits (q-home) slots past its position and the hole (q-p) slots back: it may fill
		// the hole when the hole is not before its position.
		if (q-s.h)&mask >= (q-p)&mask {
			x.slots[p] = s
			p = q
		}
	}
	x.slots[p] = islot{}
	x.n--
}
