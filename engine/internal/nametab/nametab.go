// Package nametab is a fixed-size, lock-free table from short names (header, route and
// filter names) to values, for lookups on the request path where a Go map would hash the
// whole name. A name's slot is a function of its length and four of its bytes; a slot is
// filled once, by the first name put there, and never changed, so a lookup is one atomic load
// and one comparison. A name whose slot holds another name is not in the table: the caller
// keeps its own map for those. The table holds at most Size names whatever names are put, so
// names chosen by senders cannot grow it, only take the slots (the caller's map then answers).
//
// A Table is safe for concurrent use; its zero value is an empty table. It must not be copied.
package nametab

import (
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

func slot(name string) uint32 {
	n := uint32(len(name))
	if n == 0 {
		return 0
	}
	x := n ^ uint32(name[0])<<8 ^ uint32(name[n/2])<<16 ^ uint32(name[(3*n)/4])<<24 ^ uint32(name[n-1])*0x9e3779b1
	// The product's top bits depend on every bit of x (its low bits only on x's low bits).
	return x * 0x85ebca6b >> (32 - sizeBits)
}

// Get returns name's value, and false when name is not in the table.
func (t *Table[V]) Get(name string) (V, bool) {
	if e := t.slots[slot(name)].Load(); e != nil && e.name == name {
		return e.v, true
	}
	var zero V
	return zero, false
}

// Put records v under a copy of name when name's slot is empty, and reports whether it did.
// A name already in the table keeps its value.
func (t *Table[V]) Put(name string, v V) bool {
	s := &t.slots[slot(name)]
	if s.Load() != nil {
		return false
	}
	return s.CompareAndSwap(nil, &entry[V]{name: strings.Clone(name), v: v})
}
