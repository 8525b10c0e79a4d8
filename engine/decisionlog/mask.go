package decisionlog

import (
	"bytes"
	"maps"
	"strings"
	"sync/atomic"

	"github.com/hookwall/hookwall/engine/internal/nametab"
)

// Mask decides which request-header values the log writes as "***". It always masks the
// credentials every gateway sees (Authorization, cookies, every known signature header, any
// name containing "signature", "secret", "token", "api-key", "apikey", "password", "passwd",
// "hmac", "auth", "credential", "private" or "session", and any name ending in "key"), plus
// the names it was built with. A Mask is immutable and safe for concurrent use.
type Mask struct {
	exact    map[string]bool // lower-case names
	prefixes [][]byte        // lower-case, from names ending in "*"
	all      bool
	// fast and seen remember the answer for names as they were asked (requests repeat the
	// same few). fast answers a name with one or two comparisons, no hash of the name, and
	// keeps the name encoded as the log writes it; seen holds the names whose slot in fast
	// another name took: an immutable map, replaced by a copy with one more name, up to
	// maxSeen names.
	fast    nametab.Table[answer]
	seen    atomic.Pointer[map[string]bool]
	nocache bool
}

// maxSeen bounds Mask.seen: names made up per request must not grow it without end.
const maxSeen = 512

// sensitiveExact and sensitiveParts are the default mask. Every provider's signature header
// (X-Hub-Signature-256, Stripe-Signature, X-Shopify-Hmac-Sha256, Svix-Signature, X-Api-Key, …)
// contains one of the parts.
var sensitiveExact = []string{"authorization", "proxy-authorization", "cookie", "set-cookie"}

var sensitiveParts = [][]byte{
	[]byte("signature"), []byte("secret"), []byte("token"), []byte("api-key"), []byte("apikey"),
	[]byte("password"), []byte("passwd"), []byte("hmac"), []byte("auth"), []byte("credential"),
	[]byte("private"), []byte("session"),
}

// sensitiveSuffix ends the names of keys services take under names of their own
// (Ocp-Apim-Subscription-Key, X-Functions-Key, X-Access-Key, X-Auth-Key): masking a name
// that is not a credential (Idempotency-Key) costs the log one value, missing one that is
// writes the key in the clear.
var sensitiveSuffix = []byte("key")

// defaultMask masks what every gateway masks. It keeps no cache (nocache), so it is never
// modified: each Logger has a Mask of its own.
var defaultMask = func() *Mask { m := NewMask(nil); m.nocache = true; return m }()

// NewMask returns a Mask that also masks the headers named in extra (any case); a name
// ending in "*" masks every header starting with it, and "*" alone masks every header.
func NewMask(extra []string) *Mask {
	m := &Mask{exact: make(map[string]bool, len(sensitiveExact)+len(extra))}
	for _, n := range sensitiveExact {
		m.exact[n] = true
	}
	for _, n := range extra {
		n = strings.ToLower(strings.TrimSpace(n))
		switch {
		case n == "*":
			m.all = true
		case strings.HasSuffix(n, "*"):
			m.prefixes = append(m.prefixes, []byte(strings.TrimSuffix(n, "*")))
		case n != "":
			m.exact[n] = true
		}
	}
	return m
}

// answer is a name's entry in Mask.fast: whether its value is masked, and the name as a
// JSON object's key (`"Name":`).
type answer struct {
	masked bool
	key    string
}

// Masks reports whether the value of the header name is masked. It does not allocate for
// a name it was asked about before.
func (m *Mask) Masks(name string) bool {
	masked, _ := m.lookup(name)
	return masked
}

// lookup answers Masks for name and, when name is in the table, gives it encoded as a JSON
// object's key, its colon included; key is "" otherwise.
func (m *Mask) lookup(name string) (masked bool, key string) {
	if m.all {
		return true, ""
	}
	if m.nocache {
		return m.masks(name), ""
	}
	if a, ok := m.fast.Get(name); ok {
		return a.masked, a.key
	}
	seen := m.seen.Load()
	var prev map[string]bool
	if seen != nil {
		prev = *seen
	}
	if v, ok := prev[name]; ok {
		return v, ""
	}
	v := m.masks(name)
	if m.fast.Vacant(name) && m.fast.Put(name, answer{masked: v, key: string(append(AppendString(nil, name), ':'))}) {
		return v, ""
	}
	if len(prev) < maxSeen {
		next := make(map[string]bool, len(prev)+1)
		maps.Copy(next, prev)
		next[strings.Clone(name)] = v
		m.seen.CompareAndSwap(seen, &next) // a lost race loses one entry, asked again later
	}
	return v, ""
}

// masks is Masks without the cache. It does not allocate for names up to 128 bytes.
func (m *Mask) masks(name string) bool {
	var buf [128]byte
	var lower []byte
	if len(name) <= len(buf) {
		lower = buf[:len(name)]
		for i := 0; i < len(name); i++ {
			c := name[i]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			lower[i] = c
		}
	} else {
		lower = []byte(strings.ToLower(name))
	}
	if m.exact[string(lower)] {
		return true
	}
	if bytes.HasSuffix(lower, sensitiveSuffix) {
		return true
	}
	for _, p := range sensitiveParts {
		if bytes.Contains(lower, p) {
			return true
		}
	}
	for _, p := range m.prefixes {
		if bytes.HasPrefix(lower, p) {
			return true
		}
	}
	return false
}
