package delivery_test

import (
	"context"
	"math"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/sqlite"
)

func TestDestinationID(t *testing.T) {
	a := delivery.DestinationID("https://audit.example/in")
	if a != delivery.DestinationID("https://audit.example/in") {
		t.Fatal("DestinationID is not stable")
	}
	for _, u := range []string{"", "https://audit.example/in", "https://audit.example/in/", "http://127.0.0.1:1"} {
		id := delivery.DestinationID(u)
		if id < delivery.DestinationIDBase || id > math.MaxInt32 {
			t.Errorf("DestinationID(%q) = %d: not in [2^30, 2^31)", u, id)
		}
	}
	if a == delivery.DestinationID("https://audit.example/in/") {
		t.Error("two URLs share an id")
	}
}

// Enqueue gives each destination's record the id of its URL, and the n-th an ID ending
// in -n. A destination Target does not resolve is held: its delivery stays pending, no
// attempt made, claims skip it (no busy loop), and it goes out once Target resolves it.
func TestDispatcherHoldsAnUnresolvedDestination(t *testing.T) {
	ln := fasthttpServer(t)
	store, err := sqlite.Open(sqlite.Options{Path: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	const kept, gone = "http://kept.example/in", "http://gone.example/in"
	var resolveGone atomic.Bool
	var asked atomic.Int32
	client := &fasthttp.HostClient{Addr: ln.addr}
	d := delivery.NewDispatcher(delivery.Options{
		Store: store, Owner: "gw", Lease: time.Minute, Poll: 10 * time.Millisecond,
		Fanout: func(string) []string { return []string{gone, kept} },
		Target: func(_ string, dest int) (delivery.Target, func(), bool) {
			if dest == delivery.DestinationID(gone) {
				asked.Add(1)
				if !resolveGone.Load() {
					return delivery.Target{}, nil, false
				}
			}
			return delivery.Target{Client: client, Scheme: "http", Host: ln.addr, Timeout: time.Second, Retry: []time.Duration{10 * time.Millisecond}}, func() {}, true
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	now := time.Now()
	if err := d.Enqueue(ctx, &delivery.Record{ID: "x", Route: "r", Method: "POST", URI: "/", ReceivedAt: now, NextAt: now}); err != nil {
		t.Fatal(err)
	}
	for id, dest := range map[string]int{"x": 0, "x-1": delivery.DestinationID(gone), "x-2": delivery.DestinationID(kept)} {
		r, _, err := store.Get(ctx, id)
		if err != nil || r.Dest != dest {
			t.Fatalf("%s: dest %v (%v), want %d", id, r, err, dest)
		}
	}
	waitState(t, store, "x-2", delivery.StateDelivered)
	waitState(t, store, "x", delivery.StateDelivered)
	asked.Store(0)
	time.Sleep(1500 * time.Millisecond) // 150 polls
	if n := asked.Load(); n > 3 {
		t.Fatalf("the held destination was asked for %d times in 1.5s: its delivery is claimed over and over", n)
	}
	r, attempts, err := store.Get(ctx, "x-1")
	if err != nil || r.State != delivery.StatePending || r.Attempts != 0 || len(attempts) != 0 {
		t.Fatalf("held delivery: %+v %v %v; want pending, no attempt", r, attempts, err)
	}
	if got := ln.hits.Load(); got != 2 {
		t.Fatalf("%d requests reached the upstream, want 2 (the held one sent nowhere)", got)
	}
	resolveGone.Store(true)
	waitState(t, store, "x-1", delivery.StateDelivered)
	if got := ln.hits.Load(); got != 3 {
		t.Fatalf("%d requests reached the upstream, want 3", got)
	}
}

type server struct {
	addr string
	hits *atomic.Int32
}

func fasthttpServer(t *testing.T) server {
	t.Helper()
	addr, reached := slowUpstream(t, 0, 200, nil)
	return server{addr, reached}
}

func waitState(t *testing.T, store delivery.Store, id string, want delivery.State) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r, _, err := store.Get(context.Background(), id)
		if err == nil && r.State == want {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("%s: %+v %v; want %s", id, r, err, want)
		}
	}
}
