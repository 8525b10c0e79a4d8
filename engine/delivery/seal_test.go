package delivery_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/sqlite"
)

func keyring(t *testing.T, keys ...delivery.Key) *delivery.Keyring {
	t.Helper()
	kr, err := delivery.NewKeyring(keys)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// openSQLite opens the SQLite store at path, closed when the test ends (Close is idempotent:
// a test may close it earlier, to edit the file or open it again).
func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(sqlite.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var (
	oldKey = delivery.Key{ID: "old", Value: []byte(hex.EncodeToString(bytes.Repeat([]byte{1}, 32)))}
	newKey = delivery.Key{ID: "new", Value: []byte("AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=")} // 32 × 0x02
)

// rawFiles returns the database file and its WAL, as on disk.
func rawFiles(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// Sealed records leave no plaintext on disk; a rotated keyring (new key first) opens the
// old records and seals new ones with the new key; a record whose key is gone is neither
// opened nor made dead, but returned sealed and marked held, naming the key.
func TestSealedAtRest(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d.db")
	var dead []string // what the dead hook was told: id, attempts, error
	open := func(kr *delivery.Keyring) (delivery.Store, func()) {
		s, err := sqlite.Open(sqlite.Options{Path: path})
		if err != nil {
			t.Fatal(err)
		}
		return delivery.Sealed(s, kr, func(r *delivery.Record, res delivery.Result, _ error) {
			dead = append(dead, fmt.Sprintf("%s %d %s %s", r.ID, res.Attempt.N, r.State, res.Attempt.Error))
		}), func() { _ = s.Close() }
	}
	now := time.Now()
	rec := func(id string) *delivery.Record {
		return &delivery.Record{ID: id, Route: "r", Method: "POST", URI: "/hooks", ReceivedAt: now, NextAt: now,
			Headers: []delivery.Header{{Name: "X-Hub-Signature-256", Value: "sha256=SIGNATURE-PLAINTEXT"}},
			Body:    []byte(`{"card":"BODY-PLAINTEXT-` + id + `"}`)}
	}

	s, closeS := open(keyring(t, oldKey))
	if err := s.Enqueue(ctx, rec("a")); err != nil {
		t.Fatal(err)
	}
	closeS()
	raw := rawFiles(t, path)
	if bytes.Contains(raw, []byte("BODY-PLAINTEXT")) || bytes.Contains(raw, []byte("SIGNATURE-PLAINTEXT")) {
		t.Fatal("the database file holds the body or a header in the clear")
	}

	s, closeS = open(keyring(t, newKey, oldKey))
	if err := s.Enqueue(ctx, rec("b")); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		got, _, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("%s after rotation: %v", id, err)
		}
		if want := rec(id); !bytes.Equal(got.Body, want.Body) || len(got.Headers) != 1 || got.Headers[0] != want.Headers[0] {
			t.Fatalf("%s opened as %q %v", id, got.Body, got.Headers)
		}
	}
	closeS()

	s, closeS = open(keyring(t, newKey)) // the old key retired too early
	defer closeS()
	if _, _, err := s.Get(ctx, "a"); err == nil || !strings.Contains(err.Error(), `key "old"`) {
		t.Fatalf("Get of a record sealed with a retired key: %v", err)
	}
	rs, err := s.Claim(ctx, "w", now, time.Minute, 10, delivery.Routes{})
	if err != nil || !slices.Equal(ids(rs), []string{"a", "b"}) {
		t.Fatalf("claim: %v %v, want a and b", ids(rs), err)
	}
	mk := (*delivery.MissingKeyError)(nil)
	if a := rs[0]; !errors.As(a.Held, &mk) || mk.KeyID != "old" || bytes.Contains(a.Body, []byte("BODY-PLAINTEXT")) ||
		!strings.Contains(a.Held.Error(), `delivery: a: sealed with key "old", which is not in encryption_keys: put "old" back in [delivery] encryption_keys`) {
		t.Fatalf("a, sealed with the retired key: held %v, body %q; want held, still sealed", a.Held, a.Body)
	}
	if rs[1].Held != nil || string(rs[1].Body) != string(rec("b").Body) {
		t.Fatalf("b: held %v, body %q", rs[1].Held, rs[1].Body)
	}
	if list, _ := s.List(ctx, delivery.Query{State: delivery.StateDead}); len(list) != 0 || len(dead) != 0 {
		t.Fatalf("dead: %+v, dead hook calls %q; want none", list, dead)
	}
}

func TestKeyringRejectsBadKeys(t *testing.T) {
	for _, v := range []string{"short", hex.EncodeToString(make([]byte, 16)), ""} {
		_, err := delivery.NewKeyring([]delivery.Key{{ID: "k", Value: []byte(v)}})
		if err == nil || (v != "" && strings.Contains(err.Error(), v)) {
			t.Fatalf("key %q: %v", v, err)
		}
	}
}

// Rekey moves every delivery to the first key, sealing those stored in the clear too, so
// the old key can be retired; one sealed with a key no longer held stops it, named.
func TestRekey(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d.db")
	raw := openSQLite(t, path)
	now := time.Now()
	rec := func(id string) *delivery.Record {
		return &delivery.Record{ID: id, Route: "r", Method: "POST", URI: "/", ReceivedAt: now, NextAt: now.Add(time.Hour),
			Headers: []delivery.Header{{Name: "X-Sig", Value: "SIG-" + id}}, Body: []byte("BODY-" + id)}
	}
	if err := raw.Enqueue(ctx, rec("clear")); err != nil { // before keys were set
		t.Fatal(err)
	}
	if err := delivery.Sealed(raw, keyring(t, oldKey), nil).Enqueue(ctx, rec("old")); err != nil {
		t.Fatal(err)
	}
	rotated := delivery.Sealed(raw, keyring(t, newKey, oldKey), nil).(interface {
		delivery.Store
		Rekey(context.Context) (int, error)
	})
	if err := rotated.Enqueue(ctx, rec("new")); err != nil {
		t.Fatal(err)
	}
	if n, err := rotated.Rekey(ctx); err != nil || n != 2 {
		t.Fatalf("Rekey: %d %v, want 2 (clear and old)", n, err)
	}
	if n, err := rotated.Rekey(ctx); err != nil || n != 0 {
		t.Fatalf("second Rekey: %d %v, want 0", n, err)
	}
	retired := delivery.Sealed(raw, keyring(t, newKey), nil)
	for _, id := range []string{"clear", "old", "new"} {
		got, _, err := retired.Get(ctx, id)
		if err != nil || string(got.Body) != "BODY-"+id || got.Headers[0].Value != "SIG-"+id {
			t.Fatalf("%s with the old key retired: %v %v", id, got, err)
		}
		r, _, _ := raw.Get(ctx, id)
		if len(r.Headers) != 1 || r.Headers[0].Value != "new" || bytes.Contains(r.Body, []byte("BODY")) {
			t.Fatalf("%s as stored: %v %q", id, r.Headers, r.Body)
		}
	}
	if err := delivery.Sealed(raw, keyring(t, oldKey), nil).Enqueue(ctx, rec("stray")); err != nil {
		t.Fatal(err)
	}
	_, err := retired.(interface {
		Rekey(context.Context) (int, error)
	}).Rekey(ctx)
	if err == nil || !strings.Contains(err.Error(), `delivery: stray: sealed with key "old", which is not in encryption_keys`) {
		t.Fatalf("Rekey over a delivery whose key is gone: %v", err)
	}
}

// A claim in which one record is refused (stored in the clear) and cannot be made dead (the
// claim's context ended meanwhile: the gateway stopping) fails, and gives back every record
// of it at once: the next claim has the others and makes that one dead, without waiting for
// the leases to expire.
func TestSealedFailedClaimReleasesTheOthers(t *testing.T) {
	ctx := context.Background()
	raw := openSQLite(t, filepath.Join(t.TempDir(), "d.db"))
	now := time.Now()
	rec := func(id string, at time.Time) *delivery.Record {
		return &delivery.Record{ID: id, Route: "r", Method: "POST", URI: "/", ReceivedAt: at, NextAt: at,
			Headers: []delivery.Header{{Name: "X-Sig", Value: "SIG-" + id}}, Body: []byte("BODY-" + id)}
	}
	for i, sealed := range []bool{true, false, true} { // b, in the middle, in the clear
		id := string(rune('a' + i))
		var s delivery.Store = raw
		if sealed {
			s = delivery.Sealed(raw, keyring(t, newKey), nil)
		}
		if err := s.Enqueue(ctx, rec(id, now.Add(time.Duration(i)*time.Millisecond))); err != nil {
			t.Fatal(err)
		}
	}
	var dead []string
	s := delivery.Sealed(raw, keyring(t, newKey), func(r *delivery.Record, _ delivery.Result, _ error) { dead = append(dead, r.ID) })

	ended, cancel := context.WithCancel(ctx)
	cancel()
	if rs, err := s.Claim(ended, "w1", now.Add(time.Second), time.Minute, 3, delivery.Routes{}); err == nil || !errors.Is(err, delivery.ErrStoredInClear) || len(dead) != 0 {
		t.Fatalf("claim whose dead record cannot be finished: %v %v, dead %v; want an error", ids(rs), err, dead)
	}
	rs, err := s.Claim(ctx, "w2", now.Add(time.Second), time.Minute, 3, delivery.Routes{})
	if err != nil || !slices.Equal(ids(rs), []string{"a", "c"}) {
		t.Fatalf("next claim: %v %v, want a and c (given back by the failed claim)", ids(rs), err)
	}
	for _, r := range rs {
		if want := "BODY-" + r.ID; string(r.Body) != want {
			t.Fatalf("%s opened as %q", r.ID, r.Body)
		}
	}
	if got, _, _ := raw.Get(ctx, "b"); got.State != delivery.StateDead || !slices.Equal(dead, []string{"b"}) {
		t.Fatalf("b: %s, dead hook %v; want dead once", got.State, dead)
	}
}

func ids(rs []*delivery.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}
