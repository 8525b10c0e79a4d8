package delivery_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/hookwall/hookwall/engine/delivery"
)

// secretRecord is a delivery whose target query, header and body each hold a secret.
func secretRecord(id string, now time.Time) *delivery.Record {
	return &delivery.Record{ID: id, Route: "payments", DecisionID: "dec-" + id, Method: "POST", URI: "/hooks/pay?api_key=QUERY-SECRET-123",
		ReceivedAt: now, NextAt: now, Headers: []delivery.Header{{Name: "X-Api-Key", Value: "HEADER-SECRET"}}, Body: []byte(`{"card":"BODY-SECRET"}`)}
}

// editFile runs SQL on the SQLite file at path, as someone who can write the store could.
func editFile(t *testing.T, path string, queries ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range queries {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// TestSealedQueryAndBinding: with keys, the target's query is sealed with the headers and
// body (a query credential is not in the file), the delivery comes back whole, and a sealed
// delivery re-pointed in the store at another route, destination, method, target or decision
// does not open: it is made dead, its request delivered to nobody.
func TestSealedQueryAndBinding(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	for _, edit := range []string{
		"",
		`UPDATE deliveries SET route = 'public' WHERE id = 'a'`,
		`UPDATE deliveries SET dest = 7 WHERE id = 'a'`,
		`UPDATE deliveries SET method = 'PUT' WHERE id = 'a'`,
		`UPDATE deliveries SET uri = '/hooks/pub' WHERE id = 'a'`,
		`UPDATE deliveries SET decision_id = 'dec-forged' WHERE id = 'a'`,
	} {
		path := filepath.Join(t.TempDir(), "d.db")
		raw := openSQLite(t, path)
		var dead []string
		s := delivery.Sealed(raw, keyring(t, oldKey), func(r *delivery.Record, _ delivery.Result, _ error) { dead = append(dead, r.ID) })
		if err := s.Enqueue(ctx, secretRecord("a", now)); err != nil {
			t.Fatal(err)
		}
		must(t, raw.Close())
		for _, secret := range []string{"QUERY-SECRET-123", "HEADER-SECRET", "BODY-SECRET"} {
			if bytes.Contains(rawFiles(t, path), []byte(secret)) {
				t.Fatalf("%s is in the store's file in the clear", secret)
			}
		}
		if edit != "" {
			editFile(t, path, edit)
		}
		raw = openSQLite(t, path)
		s = delivery.Sealed(raw, keyring(t, oldKey), func(r *delivery.Record, _ delivery.Result, _ error) { dead = append(dead, r.ID) })
		rs, err := s.Claim(ctx, "w", now.Add(time.Second), time.Minute, 10, delivery.Routes{})
		must(t, err)
		if edit == "" {
			if len(rs) != 1 || rs[0].URI != "/hooks/pay?api_key=QUERY-SECRET-123" || string(rs[0].Body) != `{"card":"BODY-SECRET"}` || len(rs[0].Headers) != 1 || rs[0].Headers[0].Value != "HEADER-SECRET" {
				t.Errorf("claimed %+v, want the delivery as enqueued", rs)
			}
		} else if len(rs) != 0 || len(dead) != 1 {
			t.Errorf("after %q: claimed %d (%+v), made dead %v; want none claimed, a dead", edit, len(rs), rs, dead)
		}
		must(t, raw.Close())
	}
}

// TestSealedByAnEarlierVersionOpensAndRekeys: a delivery sealed as an earlier version sealed
// (":sealed", the headers and body bound to the id alone, the query in the stored target)
// still opens to be shown (it is not delivered as it is: TestSealedDeliversOnlyWhatItSealed),
// and Rekey reseals it in the current form, its query leaving the clear.
func TestSealedByAnEarlierVersionOpensAndRekeys(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	path := filepath.Join(t.TempDir(), "d.db")
	raw := openSQLite(t, path)
	kr := keyring(t, oldKey)
	r := secretRecord("v1", now)
	sealV1(kr, r)
	must(t, raw.Enqueue(ctx, r))

	s := delivery.Sealed(raw, kr, nil).(interface {
		delivery.Store
		Rekey(context.Context) (int, error)
	})
	check := func(when string) {
		t.Helper()
		got, _, err := s.Get(ctx, "v1")
		if err != nil || got.URI != "/hooks/pay?api_key=QUERY-SECRET-123" || string(got.Body) != `{"card":"BODY-SECRET"}` || len(got.Headers) != 1 || got.Headers[0].Value != "HEADER-SECRET" {
			t.Fatalf("%s: %+v %v", when, got, err)
		}
	}
	check("as an earlier version sealed it")
	if n, err := s.Rekey(ctx); n != 1 || err != nil {
		t.Fatalf("Rekey: %d %v, want 1 resealed", n, err)
	}
	check("after Rekey")
	stored, _, err := raw.Get(ctx, "v1")
	must(t, err)
	if stored.URI != "/hooks/pay" || stored.Headers[0].Name == ":sealed" {
		t.Errorf("after Rekey the store holds target %q, mark %q; want the path alone, the current mark", stored.URI, stored.Headers[0].Name)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// sealV1 seals r as an earlier version did: ":sealed", the headers and body bound to the id
// alone, the query left in the stored target.
func sealV1(kr *delivery.Keyring, r *delivery.Record) {
	hs := delivery.EncodeHeaders(r.Headers)
	plain := append(append(binary.AppendUvarint(nil, uint64(len(hs))), hs...), r.Body...)
	var keyID string
	r.Body, keyID = kr.AppendSeal(nil, plain, []byte(r.ID))
	r.Headers = []delivery.Header{{Name: ":sealed", Value: keyID}}
}

// TestSealedDeliversOnlyWhatItSealed: with keys, a claimed delivery stored in the clear (as
// someone who can write the store would put a forged one there) and one sealed by an
// earlier version and re-pointed in the store at another route are never handed out for an
// attempt: each is made dead, the hook told why, the reason stored without the body. Rekey
// seals both (the migration path: it cannot tell them from a store's own old deliveries),
// and replayed they are then delivered.
func TestSealedDeliversOnlyWhatItSealed(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	path := filepath.Join(t.TempDir(), "d.db")
	raw := openSQLite(t, path)
	kr := keyring(t, oldKey)
	must(t, raw.Enqueue(ctx, secretRecord("clear", now)))
	v1 := secretRecord("v1", now)
	sealV1(kr, v1)
	must(t, raw.Enqueue(ctx, v1))
	must(t, raw.Close())
	editFile(t, path, `UPDATE deliveries SET route = 'public' WHERE id = 'v1'`)

	raw = openSQLite(t, path)
	causes := map[string]error{}
	s := delivery.Sealed(raw, kr, func(r *delivery.Record, _ delivery.Result, cause error) { causes[r.ID] = cause }).(interface {
		delivery.Store
		Rekey(context.Context) (int, error)
	})
	must(t, s.Enqueue(ctx, secretRecord("sealed", now)))
	rs, err := s.Claim(ctx, "w", now.Add(time.Second), time.Minute, 10, delivery.Routes{})
	must(t, err)
	if !slices.Equal(ids(rs), []string{"sealed"}) {
		t.Fatalf("claimed %v, want only the delivery the keyring sealed", ids(rs))
	}
	must(t, s.Finish(ctx, "sealed", "w", delivery.Result{Attempt: delivery.Attempt{N: 1, At: now, Status: 200}, State: delivery.StateDelivered}))
	for id, want := range map[string]error{"clear": delivery.ErrStoredInClear, "v1": delivery.ErrSealedUnbound} {
		if !errors.Is(causes[id], want) {
			t.Errorf("%s: the dead hook was told %v, want %v", id, causes[id], want)
		}
		got, _, err := raw.Get(ctx, id)
		must(t, err)
		if got.State != delivery.StateDead || !strings.Contains(got.LastError, "hookwall deliveries rekey") || strings.Contains(got.LastError, "SECRET") {
			t.Errorf("%s: %s, last error %q; want dead, saying what to do, without the request", id, got.State, got.LastError)
		}
	}

	if n, err := s.Rekey(ctx); n != 2 || err != nil {
		t.Fatalf("Rekey: %d %v, want the 2 refused resealed", n, err)
	}
	for _, id := range []string{"clear", "v1"} {
		must(t, s.Replay(ctx, id, now.Add(2*time.Second)))
	}
	rs, err = s.Claim(ctx, "w", now.Add(3*time.Second), time.Minute, 10, delivery.Routes{})
	must(t, err)
	if !slices.Equal(ids(rs), []string{"clear", "v1"}) {
		t.Fatalf("after Rekey and replay, claimed %v", ids(rs))
	}
	for _, r := range rs {
		if r.URI != "/hooks/pay?api_key=QUERY-SECRET-123" || string(r.Body) != `{"card":"BODY-SECRET"}` {
			t.Errorf("%s opened as %s %q", r.ID, r.URI, r.Body)
		}
	}
	if rs[1].Route != "public" {
		t.Errorf("v1 resealed for route %q; Rekey binds it where it points when it runs", rs[1].Route)
	}
}
