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
	"slices"
	"strconv"
	"strings"
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

// AppendSeal appends to dst the nonce and the AES-256-GCM sealing of plain under kr's first
// key, with aad and that key's id bound in, and returns it with the key id. It does not
// fail: the nonce comes from crypto/rand, which never returns an error.
func (kr *Keyring) AppendSeal(dst, plain, aad []byte) ([]byte, string) {
	aead := kr.aeads[kr.seal]
	start := len(dst)
	dst = slices.Grow(dst, aead.NonceSize()+len(plain)+aead.Overhead())
	dst = dst[:start+aead.NonceSize()]
	_, _ = rand.Read(dst[start:])
	return aead.Seal(dst, dst[start:], plain, keyAAD(aad, kr.seal)), kr.seal
}

// Open opens what AppendSeal sealed under keyID with aad. It fails naming the key when kr
// does not hold it, or when the key under that name does not open it (its value changed,
// or the bytes or aad are not the ones sealed); the error never quotes the key or the bytes.
func (kr *Keyring) Open(keyID string, sealed, aad []byte) ([]byte, error) {
	aead, ok := kr.aeads[keyID]
	if !ok {
		return nil, &MissingKeyError{KeyID: keyID}
	}
	if len(sealed) < aead.NonceSize() {
		return nil, fmt.Errorf("sealed with key %q: too short", keyID)
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], keyAAD(aad, keyID))
	if err != nil {
		return nil, fmt.Errorf("sealed with key %q but %w with it (was the secret's value changed?): %w", keyID, ErrSealBroken, err)
	}
	return plain, nil
}

// MissingKeyError is Open's error when what it opens names a key the keyring does not hold
// (it was retired from encryption_keys).
type MissingKeyError struct{ KeyID string }

func (e *MissingKeyError) Error() string {
	return fmt.Sprintf("sealed with key %q, which is not in encryption_keys", e.KeyID)
}

// keyAAD binds the key id to aad: a record cannot be passed off as sealed by another key.
func keyAAD(aad []byte, keyID string) []byte {
	out := make([]byte, 0, len(aad)+1+len(keyID))
	return append(append(append(out, aad...), 0), keyID...)
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
// id. No HTTP/1.1 header name starts with ':', so it cannot be a forwarded header. Records of
// sealedMarkV1, an earlier version's, seal the headers and the body bound to the record id
// alone, with the target's query in the clear: a writer of the store can move one to
// another route, destination or target and it still opens. They are shown (Get) and
// resealed (Rekey), never delivered as they are.
const (
	sealedMark   = ":sealed2"
	sealedMarkV1 = ":sealed"
)

// Reasons a claimed record is refused: made dead before any attempt, never sent. The error
// the dead hook gets wraps one of them.
var (
	// ErrStoredInClear: the record carries no seal, though every record the gateway stores
	// with keys is sealed. Something other than the gateway wrote it into the store, or it
	// was stored before keys were set and Rekey has not sealed it since.
	ErrStoredInClear = errors.New("stored in the clear, though [delivery] encryption_keys is set")
	// ErrSealedUnbound: the record was sealed by an earlier version, bound to its id alone,
	// so its route, destination and target may have been changed in the store.
	ErrSealedUnbound = errors.New("sealed by an earlier hookwall version, whose seal binds the delivery id alone, not its route, destination or target")
	// ErrSealBroken: the record names a key the keyring holds but does not open with it: the
	// key's value changed, or the record was changed in the store (re-pointed at another
	// route, destination or target, its ciphertext altered).
	ErrSealBroken = errors.New("does not open")
)

// ErrSealedNoKeys is why a Dispatcher holds a claimed record that is sealed while its store
// is not wrapped in Sealed (the gateway runs without encryption_keys): sending it would send
// the ciphertext, and making it dead would lose a webhook the keys still open. (One a
// Sealed store cannot open for want of its key is held too: Record.Held.)
var ErrSealedNoKeys = errors.New("sealed, and [delivery] encryption_keys is not set")

// sealedAAD is what a record's ciphertext is bound to besides its key: every field stored
// in the clear that says where and how it is delivered (the id, the route, the destination,
// the method, the target's path, the decision it came from), so that a writer of the store
// cannot move a sealed request to another route, destination or target.
func sealedAAD(r *Record) []byte {
	b := make([]byte, 0, 64+len(r.ID)+len(r.Route)+len(r.Method)+len(r.URI)+len(r.DecisionID))
	b = append(b, "hookwall delivery\x00"...)
	for _, f := range []string{r.ID, r.Route, strconv.Itoa(r.Dest), r.Method, r.URI, r.DecisionID} {
		b = append(append(b, f...), 0)
	}
	return b
}

// Sealed wraps s so that every record's headers, body and target query are stored sealed
// with AES-256-GCM under kr's first key (the store keeps the target's path); the fields
// stored in the clear (sealedAAD) and the key id are bound to the ciphertext.
//
// A claimed record that is not sealed in the current form under a key kr holds is never
// delivered: one stored in the clear (anyone who can write the store could have put it
// there, and the gateway would deliver and sign it as the route's), one sealed by an earlier
// version (bound to its id alone: it may have been re-pointed), one that does not open. It
// is made dead with an error saying what happened and what to do, and dead (may be nil) is
// called with it as the Dispatcher calls Options.Final, with the cause (errors.Is
// ErrStoredInClear, ErrSealedUnbound, ErrSealBroken or, for a row that does not decode
// (Record.Unreadable), ErrCorrupt), so that this final outcome is logged and counted like
// the others. One sealed with a key kr does not hold is not made dead: another gateway
// sharing the store may hold the key (a fleet in the middle of a rotation), or the key may
// be put back. Claim returns it still sealed, with Record.Held set to a *MissingKeyError,
// for the caller to hold (the Dispatcher keeps its lease, unattempted, until it expires).
// Get still shows such records (but one that does not decode or open), and Rekey seals
// them: see Rekey.
func Sealed(s Store, kr *Keyring, dead func(r *Record, res Result, cause error)) Store {
	return &sealed{Store: s, kr: kr, dead: dead}
}

type sealed struct {
	Store
	kr   *Keyring
	dead func(r *Record, res Result, cause error)
}

func (s *sealed) Enqueue(ctx context.Context, rs ...*Record) error {
	sealed := make([]*Record, len(rs))
	for i, r := range rs {
		sealed[i] = s.seal(r)
	}
	return s.Store.Enqueue(ctx, sealed...)
}

// seal returns r with its headers, body and target query sealed: the plain text is the query
// (from its "?", when the target has one), the headers and the body, each of the first two
// after its length.
func (s *sealed) seal(r *Record) *Record {
	hs := EncodeHeaders(r.Headers)
	path, query := r.URI, ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i:]
	}
	plain := make([]byte, 0, 20+len(query)+len(hs)+len(r.Body))
	plain = append(binary.AppendUvarint(plain, uint64(len(query))), query...)
	plain = append(binary.AppendUvarint(plain, uint64(len(hs))), hs...)
	plain = append(plain, r.Body...)
	c := *r
	c.URI = path
	var keyID string
	c.Body, keyID = s.kr.AppendSeal(nil, plain, sealedAAD(&c))
	c.Headers = []Header{{Name: sealedMark, Value: keyID}}
	return &c
}

// open replaces r's sealed headers, body and target query by the plain ones. A record
// stored in the clear is left as it is, and one sealed by an earlier version opens: open
// serves showing and resealing them; openToDeliver refuses them.
func (s *sealed) open(r *Record) error {
	if !isSealed(r) {
		return nil // stored in the clear
	}
	v1 := r.Headers[0].Name == sealedMarkV1
	aad := []byte(r.ID)
	if !v1 {
		aad = sealedAAD(r)
	}
	plain, err := s.kr.Open(r.Headers[0].Value, r.Body, aad)
	if mk := (*MissingKeyError)(nil); errors.As(err, &mk) {
		return fmt.Errorf("delivery: %s: %w: put %q back in [delivery] encryption_keys (after the key that seals); until then a pending delivery sealed with it is held, not sent, and a dead one is replayed once it is back (run hookwall deliveries rekey before retiring a key)", r.ID, err, mk.KeyID)
	}
	if err != nil {
		return fmt.Errorf("delivery: %s: %w; if not, the delivery was changed in the store (re-pointed at another route, destination or target): purge it", r.ID, err)
	}
	field := func() ([]byte, bool) {
		n, k := binary.Uvarint(plain)
		if k <= 0 || uint64(len(plain)-k) < n {
			return nil, false
		}
		f := plain[k : k+int(n)]
		plain = plain[k+int(n):]
		return f, true
	}
	var query []byte
	ok := true
	if !v1 {
		query, ok = field()
	}
	h, ok2 := field()
	if !ok || !ok2 {
		return fmt.Errorf("delivery: %s: sealed record is corrupt", r.ID)
	}
	hs, err := DecodeHeaders(h)
	if err != nil {
		return err
	}
	r.URI += string(query)
	r.Headers, r.Body = hs, plain
	return nil
}

// isSealed reports whether r carries a seal mark of either version.
func isSealed(r *Record) bool {
	return len(r.Headers) == 1 && (r.Headers[0].Name == sealedMark || r.Headers[0].Name == sealedMarkV1)
}

// openToDeliver opens r for an attempt: only a record sealed in the current form opens.
// The errors say what happened and what the operator does about it; they never quote the
// record's headers or body.
func (s *sealed) openToDeliver(r *Record) error {
	switch {
	case !isSealed(r):
		return fmt.Errorf("delivery: %s: %w: not delivered, since the gateway seals every delivery it stores. If it was stored before encryption_keys was set, run hookwall deliveries rekey (it seals every delivery it finds in the clear) and replay it; otherwise something else wrote it into the store: purge it and find out who can write the delivery store", r.ID, ErrStoredInClear)
	case r.Headers[0].Name == sealedMarkV1:
		return fmt.Errorf("delivery: %s: %w: not delivered as it is. If hookwall deliveries show gives the route and target you expect, run hookwall deliveries rekey (it reseals it bound to them) and replay it; otherwise purge it", r.ID, ErrSealedUnbound)
	}
	return s.open(r)
}

func (s *sealed) Claim(ctx context.Context, owner string, now time.Time, lease time.Duration, limit int, routes Routes) ([]*Record, error) {
	rs, err := s.Store.Claim(ctx, owner, now, lease, limit, routes)
	if err != nil {
		return nil, err
	}
	out := rs[:0]
	for i, r := range rs {
		oerr := r.Unreadable // the row does not decode: refused as one that does not open
		if oerr == nil {
			oerr = s.openToDeliver(r)
		}
		if mk := (*MissingKeyError)(nil); errors.As(oerr, &mk) {
			// Not dead: another gateway of the fleet may have the key. Left sealed, for
			// the caller to hold.
			r.Held = oerr
			out = append(out, r)
			continue
		}
		if oerr != nil {
			// Never attempted: dead, and replayable once the cause is removed (the key put
			// back, the record resealed by Rekey).
			res := Result{Attempt: Attempt{N: r.Attempts + 1, At: now, Error: oerr.Error()}, State: StateDead, Lease: r.Lease}
			if ferr := s.Store.Finish(ctx, r.ID, owner, res); ferr != nil {
				// The claim fails: every record of it goes back at once (this one too, to
				// be made dead by a later claim), not when its lease expires.
				return nil, errors.Join(oerr, ferr, s.release(ctx, owner, out, rs[i:]))
			}
			if s.dead != nil {
				r.State, r.Attempts, r.LastError, r.UpdatedAt = StateDead, res.Attempt.N, res.Attempt.Error, now
				s.dead(r, res, oerr)
			}
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// releaseTimeout bounds giving back a failed claim's leases; ctx may be what failed it.
const releaseTimeout = 5 * time.Second

// release gives back owner's leases on the records of groups.
func (s *sealed) release(ctx context.Context, owner string, groups ...[]*Record) error {
	var ids []string
	for _, g := range groups {
		for _, r := range g {
			ids = append(ids, r.ID)
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := s.Store.Release(rctx, owner, ids); err != nil {
		return fmt.Errorf("delivery: release the claim's %d leases: %w", len(ids), err)
	}
	return nil
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

// Rekey seals under kr's first key every delivery that is not sealed with it in the current
// form: those sealed with an older key kr still holds, those sealed by an earlier version
// (bound then to where they point now), and every one stored in the clear, whatever its
// state, those the gateway refused included: it cannot tell one stored before keys were set
// from one written into the store by someone else, so it is run right after keys are set,
// and refused deliveries one does not know are purged before it runs again. It returns how
// many it resealed. A delivery sealed with a key kr does not hold stops it, naming the
// delivery and the key; what was resealed before stays so.
func (s *sealed) Rekey(ctx context.Context) (int, error) {
	return s.Store.Reseal(ctx, func(r *Record) (bool, error) {
		if len(r.Headers) == 1 && r.Headers[0].Name == sealedMark && r.Headers[0].Value == s.kr.seal { // v1 records are resealed
			return false, nil
		}
		if err := s.open(r); err != nil {
			return false, err
		}
		c := s.seal(r)
		r.URI, r.Headers, r.Body = c.URI, c.Headers, c.Body
		return true, nil
	})
}

// Reseal shows fn each delivery opened, and seals what fn changed under kr's first key; a
// delivery that does not open stops it.
func (s *sealed) Reseal(ctx context.Context, fn func(r *Record) (bool, error)) (int, error) {
	return s.Store.Reseal(ctx, func(r *Record) (bool, error) {
		if err := s.open(r); err != nil {
			return false, err
		}
		if changed, err := fn(r); !changed || err != nil {
			return false, err
		}
		c := s.seal(r)
		r.URI, r.Headers, r.Body = c.URI, c.Headers, c.Body
		return true, nil
	})
}

func (s *sealed) List(ctx context.Context, q Query) ([]*Record, error) {
	rs, err := s.Store.List(ctx, q)
	for _, r := range rs {
		r.Headers = nil // the mark; List never returns headers
	}
	return rs, err
}
