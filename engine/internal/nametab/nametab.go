// Package nametab is a fixed-size, lock-free table from short names (header and route
// names) to values, for lookups on the request path where a Go map's hashing and
// probing cost more than the name's comparison. A name has two neighbouring slots, from its
// length and three eight-byte words of it; a slot is filled once, by the first name put
// there, and never changed, so a lookup is an atomic load and a comparison, two at most. A
// name whose slots hold other names is not in the table: the caller keeps its own map for
// those. The table holds at most Size names whatever names are put, so names chosen by
// senders cannot grow it, only take the slots (the caller's map then answers).
//
// A Table is safe for concurrent use; its zero value is an empty table. It must not be copied.
package nametab

import (
	"math/bits"
	"strings"
	"sync/atomic"
)

// Size is the number of slots.
const Size = 1 << sizeBits

const sizeBits = 8

// Table maps names to values of type V.
type Table[V any] struct {
	slots [Size]atomic.Pointer[entry[V]]
}

type entry[V any] struct {
	name string
	v    V
}

// slot reads a name of up to 24 bytes whole (its first, middle and last eight bytes, which
// overlap), a longer one in those three words, and mixes them with its length.
func slot(name string) uint32 {
	n := len(name)
	var x uint64
	if n >= 8 {
		x = word(name[:8]) ^ bits.RotateLeft64(word(name[(n-8)/2:]), 21) ^ bits.RotateLeft64(word(name[n-8:]), 42)
	} else {
		for i := range n {
			x = x<<8 | uint64(name[i])
		}
	}
	x ^= uint64(n) * 0x9e3779b97f4a7c15
	// The product's top bits depend on every bit of x (its low bits only on x's low bits).
	return uint32(x * 0xff51afd7ed558ccd >> (64 - sizeBits))
}

// word is s's first eight bytes, little-endian.
func word(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// Get returns name's value, and false when name is not in the table.
func (t *Table[V]) Get(name string) (V, bool) {
	i := slot(name)
	if e := t.slots[i].Load(); e != nil && e.name == name {
		return e.v, true
	}
	if e := t.slots[i^1].Load(); e != nil && e.name == name {
		return e.v, true
	}
	var zero V
	return zero, false
}

// Vacant reports whether one of name's two slots is empty: a Put of name would then succeed,
// unless other names' Puts come first. A caller checks it before making a value it would
// throw away.
func (t *Table[V]) Vacant(name string) bool {
	i := slot(name)
	return t.slots[i].Load() == nil || t.slots[i^1].Load() == nil
}

// Put records v under a copy of name when name is not in the table and one of its two slots
// is empty, and reports whether it did. A name already in the table keeps its value (two
// concurrent Puts of one name may fill both its slots; Get answers from the first).
func (t *Table[V]) Put(name string, v V) bool {
	if _, ok := t.Get(name); ok {
		return false
	}
	i := slot(name)
	var e *entry[V]
	for _, j := range [2]uint32{i, i ^ 1} {
		s := &t.slots[j]
		if s.Load() != nil {
			continue
		}
		if e == nil {
			e = &entry[V]{name: strings.Clone(name), v: v}
		}
		if s.CompareAndSwap(nil, e) {
			return true
		}
	}
	return false
}
