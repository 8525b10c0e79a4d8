package webhook

import (
	"bytes"
	"crypto/hmac"
	"fmt"
	"sync"
	"testing"
)

// macOf is HMAC(key, msg) for alg through p's keyed states, the state put back after.
func macOf(p *MACs, alg *hashAlg, key, msg []byte) []byte {
	m, pool := p.get(alg, key)
	m.h.Write(msg)
	sum := m.h.Sum(nil)
	if pool != nil {
		pool.Put(m)
	}
	return sum
}

// TestMACsKeyedByContent: a keyed state is handed out for its (digest, key) pair alone:
// keys found by the scan and in the map, keys of one length that differ in one byte, one key
// under two digests, and a key whose bytes change in place (the same slice, another secret)
// each give the HMAC a fresh hmac.New gives; past maxMACKeys keys nothing more is pooled and
// the answers stay right.
func TestMACsKeyedByContent(t *testing.T) {
	p := &MACs{}
	msg := []byte("the body")
	check := func(alg *hashAlg, key []byte) {
		t.Helper()
		want := hmac.New(alg.new, key)
		want.Write(msg)
		if got := macOf(p, alg, key, msg); !bytes.Equal(got, want.Sum(nil)) {
			t.Fatalf("HMAC with key %q: %x, want %x", key, got, want.Sum(nil))
		}
	}
	var keys [][]byte
	for i := range 12 {
		keys = append(keys, []byte(fmt.Sprintf("secret-%02d", i))) // one length, one byte apart
	}
	for range 3 {
		for _, k := range keys {
			check(algSHA256, k)
			check(algSHA1, k)
		}
	}
	if s := p.set.Load(); len(s.first) != macScan || len(s.pools) != 2*len(keys) {
		t.Fatalf("%d states found by the scan, %d in all; want %d and %d", len(s.first), len(s.pools), macScan, 2*len(keys))
	}
	shared := []byte("secret-00")
	check(algSHA256, shared)
	copy(shared, "rotated-0") // the source's bytes changed in place
	check(algSHA256, shared)
	for i := range maxMACKeys + 10 {
		check(algSHA512, []byte(fmt.Sprintf("k%d", i)))
	}
	if n := p.set.Load().len(); n != maxMACKeys {
		t.Fatalf("%d keyed states kept, want the bound %d", n, maxMACKeys)
	}
	check(algSHA256, keys[0])
}

// TestMACsConcurrent: verifications look keys up while others add them (the pools are
// replaced, never written): every HMAC is right, and the race detector sees no race.
func TestMACsConcurrent(t *testing.T) {
	p := &MACs{}
	msg := []byte("the body")
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				key := []byte(fmt.Sprintf("secret-%d", (g*7+i)%40))
				want := hmac.New(algSHA256.new, key)
				want.Write(msg)
				if got := macOf(p, algSHA256, key, msg); !bytes.Equal(got, want.Sum(nil)) {
					t.Errorf("HMAC with key %q: %x, want %x", key, got, want.Sum(nil))
					return
				}
			}
		})
	}
	wg.Wait()
	if n := p.set.Load().len(); n != 40 {
		t.Errorf("%d keyed states, want the 40 keys used", n)
	}
}

// BenchmarkMACsGet: the look-up of a policy set's one secret's keyed state, its reset and
// its return, as every verification does (from parallel goroutines with -cpu 2).
func BenchmarkMACsGet(b *testing.B) {
	p := &MACs{}
	key := []byte("a-webhook-secret-of-32-bytes-xyz")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m, pool := p.get(algSHA256, key)
			pool.Put(m)
		}
	})
}
