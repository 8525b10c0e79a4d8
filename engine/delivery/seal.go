package delivery

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// Key is one AES-256 key of a Keyring, named by the [secrets] entry it came from.
type Key struct {
	ID    string
	Value []byte // the secret's value: 32 bytes as base64 or as 64 hex digits
}

// Keyring seals records with its first key and opens them with whichever key sealed them.
type Keyring struct {
	seal  string
	aeads map[string]cipher.AEAD
}

// NewKeyring decodes keys, newest first. A key that is not 32 bytes (base64 or hex) is an
// error naming it, never quoting it.
func NewKeyring(keys []Key) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("delivery: no encryption key")
	}
	kr := &Keyring{seal: keys[0].ID, aeads: map[string]cipher.AEAD{}}
	for _, k := range keys {
		raw, ok := decodeKey(k.Value)
		if !ok {
			return nil, fmt.Errorf("delivery: encryption key %q must be 32 bytes, written as base64 or as 64 hex digits", k.ID)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("delivery: encryption key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("delivery: encryption key %q: %w", k.ID, err)
		}
		kr.aeads[k.ID] = aead
	}
	return kr, nil
}

func decodeKey(v []byte) ([]byte, bool) {
	s := string(v)
	if len(s) == 64 {
		if raw, err := hex.DecodeString(s); err == nil {
			return raw, true
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil && len(raw) == 32 {
			return raw, true
		}
	}
	return nil, false
}

// sealedMark is the one header a sealed record stores in the clear: its value is the key
// id. No HTTP/1.1 header name starts with ':', so it cannot be a forwarded header.
const sealedMark = ":sealed"

// Sealed wraps s so that every record's headers and body are stored sealed with AES-256-GCM
// under kr's first key; the record id and key id are bound to the ciphertext. Records
// stored in the clear before (no key then) still read. A claimed record sealed with a key
// kr no longer has cannot be delivered: it is made dead with an error naming the key.
func Sealed(s Store, kr *Keyring) Store { return &sealed{Store: s, kr: kr} }

type sealed struct {
	Store
	kr *Keyring
}

func (s *sealed) Enqueue(ctx context.Context, rs ...*Record) error {
	sealed := make([]*Record, len(rs))
	for i, r := range rs {
		c, err := s.seal(r)
		if err != nil {
			return err
		}
		sealed[i] = c
	}
	return s.Store.Enqueue(ctx, sealed...)
}

func (s *sealed) seal(r *Record) (*Record, error) {
	hs := EncodeHeaders(r.Headers)
	plain := binary.AppendUvarint(make([]byte, 0, 10+len(hs)+len(r.Body)), uint64(len(hs)))
	plain = append(append(plain, hs...), r.Body...)
	aead := s.kr.aeads[s.kr.seal]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("delivery: seal: %w", err)
	}
	c := *r
	c.Headers = []Header{{Name: sealedMark, Value: s.kr.seal}}
	c.Body = aead.Seal(nonce, nonce, plain, aad(r.ID, s.kr.seal))
	return &c, nil
}

func aad(id, keyID string) []byte { return []byte(id + "\x00" + keyID) }

// open replaces r's sealed headers and body by the plain ones.
func (s *sealed) open(r *Record) error {
	if len(r.Headers) != 1 || r.Headers[0].Name != sealedMark {
		return nil // stored in the clear
	}
	keyID := r.Headers[0].Value
	aead, ok := s.kr.aeads[keyID]
	if !ok {
		return fmt.Errorf("delivery: %s is sealed with key %q, which is not in encryption_keys", r.ID, keyID)
	}
	if len(r.Body) < aead.NonceSize() {
		return fmt.Errorf("delivery: %s: sealed body too short", r.ID)
	}
	plain, err := aead.Open(nil, r.Body[:aead.NonceSize()], r.Body[aead.NonceSize():], aad(r.ID, keyID))
	if err != nil {
		return fmt.Errorf("delivery: %s: sealed with key %q but does not open with it: %w", r.ID, keyID, err)
	}
	n, k := binary.Uvarint(plain)
	if k <= 0 || uint64(len(plain)-k) < n {
		return fmt.Errorf("delivery: %s: sealed record is corrupt", r.ID)
	}
	hs, err := DecodeHeaders(plain[k : k+int(n)])
	if err != nil {
		return err
	}
	r.Headers, r.Body = hs, plain[k+int(n):]
	return nil
}

func (s *sealed) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int, routes Routes) ([]*Record, error) {
	rs, err := s.Store.Claim(ctx, owner, now, lease, limit, routes)
	if err != nil {
		return nil, err
	}
	out := rs[:0]
	for _, r := range rs {
		if oerr := s.open(r); oerr != nil {
			// Undeliverable until the key comes back: dead, and replayable then.
			res := Result{Attempt: Attempt{N: r.Attempts + 1, At: now, Error: oerr.Error()}, State: StateDead}
			if ferr := s.Store.Finish(ctx, r.ID, owner, res); ferr != nil {
				return nil, errors.Join(oerr, ferr)
			}
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

func (s *sealed) Get(ctx context.Context, id string) (*Record, []Attempt, error) {
	r, as, err := s.Store.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if err := s.open(r); err != nil {
		return nil, nil, err
	}
	return r, as, nil
}

func (s *sealed) List(ctx context.Context, q Query) ([]*Record, error) {
	rs, err := s.Store.List(ctx, q)
	for _, r := range rs {
		r.Headers = nil // the mark; List never returns headers
	}
	return rs, err
}
