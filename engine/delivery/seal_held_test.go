package delivery_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/delivery"
)

// recorder is an upstream on this machine that answers 200 and keeps each request's target
// and body.
type recorder struct {
	addr string
	mu   sync.Mutex
	got  []string // "URI body"
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	rec := &recorder{addr: ln.Addr().String()}
	srv := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		rec.mu.Lock()
		rec.got = append(rec.got, string(c.RequestURI())+" "+string(c.PostBody()))
		rec.mu.Unlock()
	}}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	return rec
}

func (rec *recorder) requests() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.got...)
}

// runDispatcher runs a dispatcher of owner over store to addr (lease as given) until the
// test ends.
func runDispatcher(t *testing.T, store delivery.Store, addr, owner string, lease time.Duration, held func(*delivery.Record, error)) {
	t.Helper()
	client := &fasthttp.HostClient{Addr: addr}
	d := delivery.NewDispatcher(delivery.Options{Store: store, Owner: owner, Lease: lease, Poll: 20 * time.Millisecond, Held: held,
		Target: func(string, int) (delivery.Target, func(), bool) {
			return delivery.Target{Client: client, Scheme: "http", Host: addr, Timeout: time.Second}, func() {}, true
		}})
	ctx, cancel := context.WithCancel(context.Background())
	go d.Run(ctx)
	t.Cleanup(func() { cancel(); _ = d.Shutdown(context.Background()) })
}

// A store holding sealed deliveries, opened by a gateway without encryption_keys: nothing
// is sent (it would be the ciphertext) and nothing is made dead; each is held, pending and
// unattempted, claimed again when its lease expires, and the keys put back deliver it.
func TestSealedHeldWithoutKeys(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "d.db")
	raw := openSQLite(t, path)
	now := time.Now()
	must(t, delivery.Sealed(raw, keyring(t, oldKey), nil).Enqueue(ctx, &delivery.Record{ID: "k", Route: "r", Method: "POST", URI: "/hook?x=1",
		ReceivedAt: now, NextAt: now, Headers: []delivery.Header{{Name: "Content-Type", Value: "application/json"}}, Body: []byte(`{"ok":true}`)}))
	must(t, raw.Close())

	up := newRecorder(t)
	var mu sync.Mutex
	var causes []error
	bare := openSQLite(t, path) // no keys: not wrapped
	runDispatcher(t, bare, up.addr, "gw", 200*time.Millisecond, func(r *delivery.Record, cause error) {
		mu.Lock()
		causes = append(causes, cause)
		mu.Unlock()
	})
	time.Sleep(time.Second) // several leases
	if got := up.requests(); len(got) != 0 {
		t.Fatalf("a gateway without keys sent %d requests of a sealed delivery: %q", len(got), got)
	}
	r, as, err := bare.Get(ctx, "k")
	must(t, err)
	if r.State != delivery.StatePending || r.Attempts != 0 || len(as) != 0 {
		t.Fatalf("the held delivery is %s with %d attempts (%v); want pending, unattempted", r.State, r.Attempts, as)
	}
	mu.Lock()
	n, first := len(causes), errors.Join(causes...)
	mu.Unlock()
	if n < 2 || !errors.Is(first, delivery.ErrSealedNoKeys) || !strings.Contains(first.Error(), `key "old"`) {
		t.Fatalf("held %d times (want it claimed again after each lease): %v", n, first)
	}
	must(t, bare.Close())

	runDispatcher(t, delivery.Sealed(openSQLite(t, path), keyring(t, oldKey), nil), up.addr, "gw", time.Minute, nil)
	for end := time.Now().Add(5 * time.Second); len(up.requests()) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("with the key back, the held delivery was not delivered")
		}
	}
	if got := up.requests(); len(got) != 1 || got[0] != `/hook?x=1 {"ok":true}` {
		t.Fatalf("the upstream got %q; want the webhook once", got)
	}
}

// A fleet sharing a store, in the middle of a rotation: gateway A seals with the new key,
// gateway B does not have it yet. B claims A's webhook first: it holds it (neither sends nor
// makes it dead), and A, which has the key, delivers it once B's lease expires.
func TestSealedWithAKeyThisGatewayLacksIsHeld(t *testing.T) {
	ctx := context.Background()
	store := openSQLite(t, filepath.Join(t.TempDir(), "d.db")) // stands in for the fleet's PostgreSQL store
	gwA := delivery.Sealed(store, keyring(t, newKey, oldKey), nil)
	var mu sync.Mutex
	var held []error
	var dead []string
	gwB := delivery.Sealed(store, keyring(t, oldKey), func(r *delivery.Record, _ delivery.Result, cause error) {
		mu.Lock()
		dead = append(dead, r.ID+": "+cause.Error())
		mu.Unlock()
	})
	now := time.Now()
	must(t, gwA.Enqueue(ctx, &delivery.Record{ID: "w1", Route: "r", Method: "POST", URI: "/hook", ReceivedAt: now, NextAt: now, Body: []byte(`{"n":1}`)}))

	up := newRecorder(t)
	runDispatcher(t, gwB, up.addr, "gwB", 300*time.Millisecond, func(_ *delivery.Record, cause error) {
		mu.Lock()
		held = append(held, cause)
		mu.Unlock()
	})
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := len(held) + len(dead)
		mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("gateway B never claimed the webhook")
		}
	}
	runDispatcher(t, gwA, up.addr, "gwA", time.Minute, nil)
	waitState(t, store, "w1", delivery.StateDelivered)
	mu.Lock()
	defer mu.Unlock()
	mk := (*delivery.MissingKeyError)(nil)
	if len(dead) != 0 || len(held) == 0 || !errors.As(held[0], &mk) || mk.KeyID != "new" {
		t.Fatalf("gateway B: dead %q, held %v; want it held for want of key \"new\"", dead, held)
	}
	if got := up.requests(); len(got) != 1 || got[0] != `/hook {"n":1}` {
		t.Fatalf("the upstream got %q; want the webhook once", got)
	}
}
