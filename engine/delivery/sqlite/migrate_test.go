package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery"
)

// oldSchema is the schema before rows were keyed by seq: a text primary key, headers and
// bodies by id, indexes over every state, every attempt in delivery_attempts, leases in
// the rows.
const oldSchema = `
CREATE TABLE deliveries (
	id TEXT PRIMARY KEY, route TEXT NOT NULL, dest INTEGER NOT NULL DEFAULT 0, decision_id TEXT NOT NULL,
	received_at INTEGER NOT NULL, method TEXT NOT NULL, uri TEXT NOT NULL, state TEXT NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0, base INTEGER NOT NULL DEFAULT 0, next_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL, last_status INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '',
	claimed_by TEXT, lease_until INTEGER);
CREATE INDEX deliveries_due ON deliveries (state, next_at);
CREATE INDEX deliveries_route ON deliveries (route, received_at);
CREATE INDEX deliveries_updated ON deliveries (state, updated_at);
CREATE TABLE delivery_bodies (id TEXT PRIMARY KEY, headers BLOB NOT NULL, body BLOB NOT NULL);
CREATE TABLE delivery_attempts (delivery_id TEXT NOT NULL, n INTEGER NOT NULL, at INTEGER NOT NULL,
	status INTEGER NOT NULL, latency_us INTEGER NOT NULL, error TEXT NOT NULL);
CREATE INDEX delivery_attempts_id ON delivery_attempts (delivery_id, n);
`

// A file of the schema before seq keys opens with every delivery as it was (record,
// headers, body, state, attempts), claims what was due, records new attempts beside the
// old ones, and opens again unchanged.
func TestOpenMigratesTextKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(oldSchema); err != nil {
		t.Fatal(err)
	}
	base := time.Unix(1_700_000_000, 0)
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	type stored struct {
		r  delivery.Record
		as []delivery.Attempt
	}
	want := []stored{
		{r: delivery.Record{ID: "0190aaaa000000000000000000000001", Route: "github", DecisionID: "dec-1", ReceivedAt: at(1),
			Method: "POST", URI: "/hooks/github?x=1", Headers: []delivery.Header{{Name: "X-A", Value: "1"}, {Name: "X-A", Value: "2"}},
			Body: []byte("pending, leased by a dead process"), State: delivery.StatePending, NextAt: at(1), UpdatedAt: at(1)}},
		{r: delivery.Record{ID: "0190aaaa000000000000000000000002", Route: "github", Dest: 1, DecisionID: "dec-2", ReceivedAt: at(2),
			Method: "PUT", URI: "/d", Body: []byte{}, State: delivery.StateDelivered, Attempts: 1, NextAt: at(2), UpdatedAt: at(3), LastStatus: 204},
			as: []delivery.Attempt{{N: 1, At: at(2), Status: 204, Latency: 1500 * time.Microsecond}}},
		{r: delivery.Record{ID: "dead-one", Route: "stripe", DecisionID: "dec-3", ReceivedAt: at(3), Method: "POST", URI: "/s",
			Headers: []delivery.Header{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{"dead":true}`),
			State: delivery.StateDead, Attempts: 3, Base: 1, NextAt: at(4), UpdatedAt: at(9), LastStatus: 500, LastError: "upstream: 500"},
			as: []delivery.Attempt{{N: 1, At: at(3), Error: "connection refused"}, {N: 2, At: at(5), Status: 503, Latency: time.Millisecond},
				{N: 3, At: at(8), Status: 500, Latency: 2 * time.Millisecond, Error: "upstream: 500"}}},
		{r: delivery.Record{ID: "retry-later", Route: "stripe", DecisionID: "dec-4", ReceivedAt: at(4), Method: "POST", URI: "/s",
			Body: []byte("retried"), State: delivery.StatePending, Attempts: 1, NextAt: at(3600), UpdatedAt: at(5), LastStatus: 502},
			as: []delivery.Attempt{{N: 1, At: at(4), Status: 502, Latency: 3 * time.Millisecond}}},
	}
	for _, w := range want {
		r := w.r
		if _, err := old.Exec(`INSERT INTO deliveries (id, route, dest, decision_id, received_at, method, uri, state, attempts, base,
			next_at, updated_at, last_status, last_error, claimed_by, lease_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'dead-process', ?)`,
			r.ID, r.Route, r.Dest, r.DecisionID, r.ReceivedAt.UnixNano(), r.Method, r.URI, string(r.State), r.Attempts, r.Base,
			r.NextAt.UnixNano(), r.UpdatedAt.UnixNano(), r.LastStatus, r.LastError, at(7200).UnixNano()); err != nil {
			t.Fatal(err)
		}
		if _, err := old.Exec(`INSERT INTO delivery_bodies (id, headers, body) VALUES (?, ?, ?)`, r.ID, delivery.EncodeHeaders(r.Headers), r.Body); err != nil {
			t.Fatal(err)
		}
		for _, a := range w.as {
			if _, err := old.Exec(`INSERT INTO delivery_attempts (delivery_id, n, at, status, latency_us, error) VALUES (?, ?, ?, ?, ?, ?)`,
				r.ID, a.N, a.At.UnixNano(), a.Status, a.Latency.Microseconds(), a.Error); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	// check reads every delivery back through Get and List.
	check := func(s *Store, want []stored) {
		t.Helper()
		ctx := context.Background()
		for _, w := range want {
			r, as, err := s.Get(ctx, w.r.ID)
			if err != nil {
				t.Fatalf("%s: %v", w.r.ID, err)
			}
			if !reflect.DeepEqual(*r, w.r) {
				t.Errorf("%s after the migration:\n got %+v\nwant %+v", w.r.ID, *r, w.r)
			}
			if !reflect.DeepEqual(as, w.as) {
				t.Errorf("%s's attempts after the migration:\n got %+v\nwant %+v", w.r.ID, as, w.as)
			}
		}
		all, err := s.List(ctx, delivery.Query{})
		if err != nil || len(all) != len(want) {
			t.Fatalf("list after the migration: %d deliveries, %v; want %d", len(all), err, len(want))
		}
	}
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	check(s, want)

	// The dead process's lease is void: the due delivery is claimable now, the retry at
	// its time; new attempts are recorded after the old ones.
	ctx := context.Background()
	got, err := s.Claim(ctx, "w", at(10), time.Minute, 10, delivery.Routes{})
	if err != nil || len(got) != 1 || got[0].ID != want[0].r.ID {
		t.Fatalf("claim after the migration: %v, %v; want %s alone", ids(got), err, want[0].r.ID)
	}
	first := delivery.Attempt{N: 1, At: at(11), Status: 200, Latency: 4 * time.Millisecond}
	if err := s.Finish(ctx, want[0].r.ID, "w", delivery.Result{Attempt: first, State: delivery.StateDelivered}); err != nil {
		t.Fatal(err)
	}
	want[0].r.State, want[0].r.Attempts, want[0].r.NextAt, want[0].r.UpdatedAt, want[0].r.LastStatus =
		delivery.StateDelivered, 1, time.Unix(0, time.Time{}.UnixNano()), at(11).Add(4*time.Millisecond), 200
	want[0].as = []delivery.Attempt{first}
	if got, err = s.Claim(ctx, "w", at(3600), time.Minute, 10, delivery.Routes{}); err != nil || len(got) != 1 || got[0].ID != "retry-later" {
		t.Fatalf("claim of the retry: %v, %v", ids(got), err)
	}
	second := delivery.Attempt{N: 2, At: at(3601), Status: 200, Latency: time.Millisecond}
	if err := s.Finish(ctx, "retry-later", "w", delivery.Result{Attempt: second, State: delivery.StateDelivered}); err != nil {
		t.Fatal(err)
	}
	want[3].r.State, want[3].r.Attempts, want[3].r.NextAt, want[3].r.UpdatedAt, want[3].r.LastStatus =
		delivery.StateDelivered, 2, want[0].r.NextAt, at(3601).Add(time.Millisecond), 200
	want[3].as = append(want[3].as, second)
	check(s, want)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s, want)
}

func ids(rs []*delivery.Record) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// A new file has pages of pageSize (three stored requests of a couple of KB to a page); a
// file made with another page size keeps it, and works.
func TestPageSize(t *testing.T) {
	pageOf := func(s *Store) int {
		t.Helper()
		var n int
		if err := s.r.QueryRow(`PRAGMA page_size`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	s, err := Open(Options{Path: filepath.Join(t.TempDir(), "new.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := pageOf(s); got != pageSize {
		t.Errorf("a new file's page size is %d, want %d", got, pageSize)
	}
	path := filepath.Join(t.TempDir(), "old.db")
	old, err := sql.Open("sqlite", "file:"+path+"?_pragma=page_size(4096)")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(oldSchema); err != nil {
		t.Fatal(err)
	}
	old.Close()
	s2, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := pageOf(s2); got != 4096 {
		t.Errorf("a 4 KB-page file's page size is %d after Open, want it kept", got)
	}
	now := time.Now()
	if err := s2.Enqueue(context.Background(), &delivery.Record{ID: "x", Route: "r", Method: "POST", URI: "/", ReceivedAt: now, NextAt: now}); err != nil {
		t.Fatal(err)
	}
}

// firstSchema is the store's first schema: headers and bodies in the deliveries rows, and
// no dest (every delivery went to its route's upstream).
const firstSchema = `
CREATE TABLE deliveries (id TEXT PRIMARY KEY, route TEXT NOT NULL, decision_id TEXT NOT NULL,
	received_at INTEGER NOT NULL, method TEXT NOT NULL, uri TEXT NOT NULL, headers BLOB NOT NULL,
	body BLOB NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, base INTEGER NOT NULL DEFAULT 0,
	next_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_status INTEGER NOT NULL DEFAULT 0,
	last_error TEXT NOT NULL DEFAULT '', claimed_by TEXT, lease_until INTEGER);
CREATE TABLE delivery_attempts (delivery_id TEXT NOT NULL, n INTEGER NOT NULL, at INTEGER NOT NULL,
	status INTEGER NOT NULL, latency_us INTEGER NOT NULL, error TEXT NOT NULL);
`

// A file of the first schema (no dest column) opens with its deliveries kept, each going to
// its route's upstream, and the pending one is claimed.
func TestOpenMigratesFirstSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "d.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(firstSchema); err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1_700_000_000, 0)
	want := delivery.Record{ID: "a", Route: "github", DecisionID: "d", ReceivedAt: at, Method: "POST", URI: "/hooks?x=1",
		Headers: []delivery.Header{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{}`),
		State: delivery.StatePending, NextAt: at, UpdatedAt: at}
	if _, err := old.Exec(`INSERT INTO deliveries (id, route, decision_id, received_at, method, uri, headers, body, state, next_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`, want.ID, want.Route, want.DecisionID, at.UnixNano(), want.Method, want.URI,
		delivery.EncodeHeaders(want.Headers), want.Body, at.UnixNano(), at.UnixNano()); err != nil {
		t.Fatal(err)
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(Options{Path: path})
	if err != nil {
		t.Fatalf("open a file of the first schema: %v", err)
	}
	defer s.Close()
	r, _, err := s.Get(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*r, want) {
		t.Errorf("after the migration:\n got %+v\nwant %+v", *r, want)
	}
	got, err := s.Claim(context.Background(), "w", at.Add(time.Second), time.Minute, 10, delivery.Routes{})
	if err != nil || len(got) != 1 || got[0].ID != "a" || got[0].Dest != 0 {
		t.Fatalf("claim after the migration: %v, %v; want a, to the upstream", ids(got), err)
	}
}
