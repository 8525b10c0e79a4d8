package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"maps"
	"sync"
	"sync/atomic"
)

// hashAlg names a digest, so keyed states of different digests never mix.
type hashAlg struct{ new func() hash.Hash }

var (
	algSHA1   = &hashAlg{sha1.New}
	algSHA256 = &hashAlg{sha256.New}
	algSHA512 = &hashAlg{sha512.New}
)

// MACs reuses keyed HMAC states across verifications: keying one costs two digest blocks and
// several allocations, which a verification of a small body otherwise pays every time. It
// keeps states for at most maxMACKeys (digest, key) pairs; others are keyed per use. Safe for
// concurrent use; the zero value is ready. Hold one per set of secrets, as the policy package
// does per policy set.
//
// The states' pools are copied on write and read without a lock: every verification looks
// its key up, and a read lock's counter is written by every reader.
type MACs struct {
	mu  sync.Mutex // serializes the writers
	set atomic.Pointer[macSet]
}

// macSet is one version of MACs' pools, never written once published. first holds the first
// macScan of them, found by a scan comparing keys (a policy set's one or two secrets: no
// hash of the key per verification); pools holds them all.
type macSet struct {
	first []macEntry
	pools map[macID]*sync.Pool
}

type macEntry struct {
	alg  *hashAlg
	key  []byte // MACs' own copy
	pool *sync.Pool
}

type macID struct {
	alg *hashAlg
	key string
}

const (
	maxMACKeys = 256
	macScan    = 4
)

// macState is a keyed HMAC and the buffer its sum is written to: a buffer on the caller's
// stack would escape through the hash.Hash interface, one allocation per verification.
type macState struct {
	h   hash.Hash
	sum [maxSigLen]byte
}

// get returns an HMAC keyed with key, reset, and the pool to put it back to (nil when it is
// not pooled). A nil *MACs pools nothing.
func (p *MACs) get(alg *hashAlg, key []byte) (*macState, *sync.Pool) {
	if p == nil {
		return &macState{h: hmac.New(alg.new, key)}, nil
	}
	pool := p.set.Load().lookup(alg, key)
	if pool == nil {
		p.mu.Lock()
		old := p.set.Load()
		if pool = old.lookup(alg, key); pool == nil && old.len() < maxMACKeys {
			k := bytes.Clone(key)
			pool = &sync.Pool{New: func() any { return &macState{h: hmac.New(alg.new, k)} }}
			next := &macSet{pools: make(map[macID]*sync.Pool, old.len()+1)}
			if old != nil {
				maps.Copy(next.pools, old.pools)
				next.first = old.first[:len(old.first):len(old.first)]
			}
			next.pools[macID{alg, string(k)}] = pool
			if len(next.first) < macScan {
				next.first = append(next.first, macEntry{alg: alg, key: k, pool: pool})
			}
			p.set.Store(next)
		}
		p.mu.Unlock()
		if pool == nil {
			return &macState{h: hmac.New(alg.new, key)}, nil
		}
	}
	m := pool.Get().(*macState)
	m.h.Reset()
	return m, pool
}

// lookup returns the pool of states keyed with key for alg, nil when s (nil: none yet) has
// none.
func (s *macSet) lookup(alg *hashAlg, key []byte) *sync.Pool {
	if s == nil {
		return nil
	}
	for i := range s.first {
		if e := &s.first[i]; e.alg == alg && bytes.Equal(e.key, key) {
			return e.pool
		}
	}
	if len(s.pools) > len(s.first) {
		return s.pools[macID{alg, string(key)}]
	}
	return nil
}

// len returns how many (digest, key) pairs s (nil: none yet) has states for.
func (s *macSet) len() int {
	if s == nil {
		return 0
	}
	return len(s.pools)
}
