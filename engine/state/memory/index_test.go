package memory

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// The dedupe index finds exactly the keys put and not deleted, through random puts and
// deletions whose hashes collide in long clusters (a few distinct values, some placed at the
// end of the slots so that probes wrap), checked against a map after every step.
func TestIndexMatchesMap(t *testing.T) {
	for _, hashes := range []uint32{1, 3, 64, 1<<32 - 1} {
		rng := rand.New(rand.NewPCG(uint64(hashes), 7))
		var x index
		var ents []entry
		want := map[string]int32{}
		hashOf := func(k int) uint32 {
			if hashes == 1<<32-1 {
				return uint32(k) * 2654435761
			}
			return uint32(k)%hashes + 13 // 13: near the end of the 16 first slots
		}
		for step := range 20000 {
			k := rng.IntN(300)
			key := "k" + strconv.Itoa(k)
			h := hashOf(k)
			if i, ok := want[key]; ok && rng.IntN(2) == 0 {
				x.del(h, i)
				delete(want, key)
			} else if !ok {
				i := int32(len(ents))
				ents = append(ents, entry{key: key, h: h})
				x.put(h, i)
				want[key] = i
			}
			if x.n != len(want) {
				t.Fatalf("hashes %d, step %d: %d keys, want %d", hashes, step, x.n, len(want))
			}
			if 2*x.n > len(x.slots) {
				t.Fatalf("hashes %d, step %d: %d keys in %d slots", hashes, step, x.n, len(x.slots))
			}
			if step%50 != 0 {
				continue
			}
			for k := range 300 {
				key := "k" + strconv.Itoa(k)
				i, ok := want[key]
				if !ok {
					i = -1
				}
				if got := x.get(ents, key, hashOf(k)); got != i {
					t.Fatalf("hashes %d, step %d: get(%s) = %d, want %d", hashes, step, key, got, i)
				}
			}
		}
	}
}
