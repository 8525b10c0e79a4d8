package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
	"sync"
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
type MACs struct {
	mu    sync.RWMutex
	pools map[macID]*sync.Pool
}

type macID struct {
	alg *hashAlg
	key string
}

const maxMACKeys = 256

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
	p.mu.RLock()
	pool := p.pools[macID{alg, string(key)}]
	p.mu.RUnlock()
	if pool == nil {
		p.mu.Lock()
		if pool = p.pools[macID{alg, string(key)}]; pool == nil && len(p.pools) < maxMACKeys {
			k := bytes.Clone(key)
			pool = &sync.Pool{New: func() any { return &macState{h: hmac.New(alg.new, k)} }}
			if p.pools == nil {
				p.pools = map[macID]*sync.Pool{}
			}
			p.pools[macID{alg, string(k)}] = pool
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
