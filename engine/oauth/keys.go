package oauth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	_ "crypto/sha256" // the hashes the algorithms name
	_ "crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
)

type keyKind uint8

const (
	kindRSA keyKind = iota + 1
	kindEC
	kindEd25519
	kindHMAC
)

// algorithm is one JWS "alg" this package verifies.
type algorithm struct {
	name  string
	kind  keyKind
	hash  crypto.Hash
	pss   bool
	curve elliptic.Curve // EC only
	size  int            // EC: bytes of one coordinate (and of r and s)
}

var algorithms = map[string]*algorithm{
	"RS256":   {name: "RS256", kind: kindRSA, hash: crypto.SHA256},
	"RS384":   {name: "RS384", kind: kindRSA, hash: crypto.SHA384},
	"RS512":   {name: "RS512", kind: kindRSA, hash: crypto.SHA512},
	"PS256":   {name: "PS256", kind: kindRSA, hash: crypto.SHA256, pss: true},
	"PS384":   {name: "PS384", kind: kindRSA, hash: crypto.SHA384, pss: true},
	"PS512":   {name: "PS512", kind: kindRSA, hash: crypto.SHA512, pss: true},
	"ES256":   {name: "ES256", kind: kindEC, hash: crypto.SHA256, curve: elliptic.P256(), size: 32},
	"ES384":   {name: "ES384", kind: kindEC, hash: crypto.SHA384, curve: elliptic.P384(), size: 48},
	"ES512":   {name: "ES512", kind: kindEC, hash: crypto.SHA512, curve: elliptic.P521(), size: 66},
	"EdDSA":   {name: "EdDSA", kind: kindEd25519},
	"Ed25519": {name: "Ed25519", kind: kindEd25519},
	"HS256":   {name: "HS256", kind: kindHMAC, hash: crypto.SHA256},
	"HS384":   {name: "HS384", kind: kindHMAC, hash: crypto.SHA384},
	"HS512":   {name: "HS512", kind: kindHMAC, hash: crypto.SHA512},
}

const algorithmNames = "RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, Ed25519, HS256, HS384, HS512"

// defaultAlgorithms are accepted when a configuration names none.
var defaultAlgorithms = []string{"RS256", "ES256", "EdDSA"}

// DefaultAlgorithms returns the algorithms accepted when none are configured.
func DefaultAlgorithms() []string { return append([]string(nil), defaultAlgorithms...) }

// CheckAlgorithm reports whether name is an algorithm tokens may be accepted with, and
// whether it is an HMAC one (which needs a shared secret).
func CheckAlgorithm(name string) (hmac bool, err error) {
	a := algorithms[name]
	if a == nil {
		if strings.EqualFold(name, "none") {
			return false, errors.New("\"none\" (unsigned tokens) is never accepted")
		}
		return false, fmt.Errorf("unknown algorithm %q (known: %s)", name, algorithmNames)
	}
	return a.kind == kindHMAC, nil
}

// MinHMACSecret is the shortest shared secret accepted for HS256 (RFC 7518 section 3.2: a key at
// least as long as the hash output); HS384 and HS512 need 48 and 64 bytes.
const MinHMACSecret = 32

// key is one parsed, checked public key of a key set. Immutable.
type key struct {
	kid  string
	alg  string // the JWK's own "alg"; "" when it has none
	kind keyKind
	rsa  *rsa.PublicKey
	ec   *ecdsa.PublicKey
	ed   ed25519.PublicKey
}

// fits reports whether k may verify a signature of a.
func (k *key) fits(a *algorithm) bool {
	if k.kind != a.kind || (k.alg != "" && k.alg != a.name && !(k.kind == kindEd25519 && a.kind == kindEd25519)) {
		return false
	}
	return k.kind != kindEC || k.ec.Curve == a.curve
}

// verify checks sig over signed with k under a (k.fits(a) holds).
func (k *key) verify(a *algorithm, signed, sig []byte) bool {
	switch a.kind {
	case kindRSA:
		h := a.hash.New()
		h.Write(signed)
		var buf [64]byte
		digest := h.Sum(buf[:0])
		if a.pss {
			return rsa.VerifyPSS(k.rsa, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}) == nil
		}
		return rsa.VerifyPKCS1v15(k.rsa, a.hash, digest, sig) == nil
	case kindEC:
		if len(sig) != 2*a.size {
			return false
		}
		h := a.hash.New()
		h.Write(signed)
		var buf [64]byte
		digest := h.Sum(buf[:0])
		r := new(big.Int).SetBytes(sig[:a.size])
		s := new(big.Int).SetBytes(sig[a.size:])
		return ecdsa.Verify(k.ec, digest, r, s)
	case kindEd25519:
		return ed25519.Verify(k.ed, signed, sig)
	}
	return false
}

// verifyHMAC checks sig over signed with each secret, in constant time per secret.
func verifyHMAC(a *algorithm, secrets [][]byte, signed, sig []byte) bool {
	ok := 0
	for _, s := range secrets {
		m := hmac.New(a.hash.New, s)
		m.Write(signed)
		var buf [64]byte
		ok |= subtle.ConstantTimeCompare(m.Sum(buf[:0]), sig)
	}
	return ok == 1
}

// jsonWebKey is the part of RFC 7517/7518/8037 JSON Web Keys this package reads.
type jsonWebKey struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
	K   string `json:"k"`
}

// minRSABits is the smallest RSA modulus accepted in a key set.
const minRSABits = 2048

// parseKeySet reads a JWKS document, keeping at most maxKeys usable signature keys. Keys it
// cannot use (other types, encryption keys, weak or malformed ones) are skipped and counted
// in skipped; an error means the document itself is unusable.
func parseKeySet(doc []byte, maxKeys int) (keys []*key, skipped int, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, 0, fmt.Errorf("key set is not JSON: %w", err)
	}
	if set.Keys == nil {
		return nil, 0, errors.New("key set has no \"keys\" array")
	}
	for _, raw := range set.Keys {
		var j jsonWebKey
		if json.Unmarshal(raw, &j) != nil {
			skipped++
			continue
		}
		k, err := parseKey(&j)
		if err != nil {
			skipped++
			continue
		}
		if len(keys) == maxKeys {
			return nil, 0, fmt.Errorf("key set holds more than max_keys = %d signature keys", maxKeys)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("key set holds no usable signature key (%d skipped)", skipped)
	}
	return keys, skipped, nil
}

var b64 = base64.RawURLEncoding

// b64token decodes a token's parts: strictly, so that the pad bits of a part's last
// character must be zero (RFC 4648 section 3.5) and the same bytes have one spelling only.
// An ES256/384/512 token still has two: an ECDSA signature (r, s) verifies as (r, n−s) too,
// and about half of the tokens honest issuers sign carry the larger s, so neither form can be
// refused. A token's text is therefore not its identity (a policy keys on its claims, jti).
var b64token = base64.RawURLEncoding.Strict()

func parseKey(j *jsonWebKey) (*key, error) {
	if j.Use != "" && j.Use != "sig" {
		return nil, errors.New("not a signature key")
	}
	if j.D != "" || j.K != "" {
		// A private or symmetric key published in a key set is a misconfiguration; a
		// symmetric one would let anyone who reads the set sign tokens.
		return nil, errors.New("private or symmetric key in a public key set")
	}
	k := &key{kid: j.Kid, alg: j.Alg}
	if j.Alg != "" {
		a := algorithms[j.Alg]
		if a == nil || a.kind == kindHMAC {
			return nil, errors.New("unusable alg")
		}
	}
	switch j.Kty {
	case "RSA":
		n, err := b64.DecodeString(j.N)
		if err != nil {
			return nil, err
		}
		e, err := b64.DecodeString(j.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("bad exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits || pub.E < 3 || pub.E%2 == 0 {
			return nil, errors.New("weak RSA key")
		}
		k.kind, k.rsa = kindRSA, pub
	case "EC":
		var a *algorithm
		switch j.Crv {
		case "P-256":
			a = algorithms["ES256"]
		case "P-384":
			a = algorithms["ES384"]
		case "P-521":
			a = algorithms["ES512"]
		default:
			return nil, errors.New("unknown curve")
		}
		x, err1 := b64.DecodeString(j.X)
		y, err2 := b64.DecodeString(j.Y)
		if err1 != nil || err2 != nil || len(x) != a.size || len(y) != a.size {
			return nil, errors.New("bad point")
		}
		point := make([]byte, 0, 1+2*a.size)
		point = append(append(append(point, 4), x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(a.curve, point) // checks the point is on the curve
		if err != nil {
			return nil, err
		}
		k.kind, k.ec = kindEC, pub
	case "OKP":
		x, err := b64.DecodeString(j.X)
		if j.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("unsupported OKP key")
		}
		k.kind, k.ed = kindEd25519, ed25519.PublicKey(x)
	default:
		return nil, errors.New("unsupported key type")
	}
	if j.Alg != "" && algorithms[j.Alg].kind != k.kind {
		return nil, errors.New("alg does not match the key type")
	}
	return k, nil
}

// keySet is one fetched, parsed key set. Immutable once published.
type keySet struct {
	byKid   map[string][]*key
	all     []*key
	fetched int64 // unix nanoseconds
}

func newKeySet(keys []*key, fetched int64) *keySet {
	s := &keySet{byKid: make(map[string][]*key, len(keys)), all: keys, fetched: fetched}
	for _, k := range keys {
		s.byKid[k.kid] = append(s.byKid[k.kid], k)
	}
	return s
}

// candidates returns the keys a token with kid may have been signed with under a: the
// keys with that kid, or every key when the token names none.
func (s *keySet) candidates(kid string, hasKid bool) []*key {
	if hasKid {
		return s.byKid[kid]
	}
	return s.all
}
