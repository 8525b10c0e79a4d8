package delivery_test

import (
	"context"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/sqlite"
)

// stalledFinish is a store whose first Finish stalls for delay before it is made, whatever
// its context says (a commit already begun under a slow fsync); it keeps that Finish's
// lease, and when it returned.
type stalledFinish struct {
	delivery.Store
	delay time.Duration
	n     atomic.Int32

	mu       sync.Mutex
	lease    time.Time
	returned time.Time
}

func (s *stalledFinish) Finish(ctx context.Context, id, owner string, res delivery.Result) error {
	if s.n.Add(1) != 1 {
		return s.Store.Finish(ctx, id, owner, res)
	}
	time.Sleep(s.delay)
	err := s.Store.Finish(ctx, id, owner, res)
	s.mu.Lock()
	s.lease, s.returned = res.Lease, time.Now()
	s.mu.Unlock()
	return err
}

// An attempt whose recording outlasts its lease: the dispatcher does not claim the delivery
// back (nor send it again) while that attempt is still being recorded, and the store takes
// the late result, since no other claim took the lease meanwhile: sent once, recorded once.
func TestNoSecondAttemptWhileTheFirstIsRecorded(t *testing.T) {
	var mu sync.Mutex
	var hits []time.Time
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	up := &fasthttp.Server{Handler: func(*fasthttp.RequestCtx) {
		mu.Lock()
		hits = append(hits, time.Now())
		mu.Unlock()
	}}
	go up.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = up.Shutdown() })
	srv := ln.Addr().String()
	st, err := sqlite.Open(sqlite.Options{Path: filepath.Join(t.TempDir(), "d.db")})
	must(t, err)
	t.Cleanup(func() { _ = st.Close() })
	store := &stalledFinish{Store: st, delay: 900 * time.Millisecond}
	client := &fasthttp.HostClient{Addr: srv}
	d := delivery.NewDispatcher(delivery.Options{Store: store, Owner: "gw", Lease: 400 * time.Millisecond, Poll: 20 * time.Millisecond,
		Target: func(string, int) (delivery.Target, func(), bool) {
			return delivery.Target{Client: client, Scheme: "http", Host: srv, Timeout: 100 * time.Millisecond}, func() {}, true
		}})
	ctx, cancel := context.WithCancel(context.Background())
	go d.Run(ctx)
	t.Cleanup(func() { cancel(); _ = d.Shutdown(context.Background()) })
	now := time.Now()
	must(t, d.Enqueue(context.Background(), &delivery.Record{ID: "once", Route: "r", Method: "POST", URI: "/", ReceivedAt: now, NextAt: now}))
	waitState(t, st, "once", delivery.StateDelivered)
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		store.mu.Lock()
		done := !store.returned.IsZero()
		store.mu.Unlock()
		if done {
			break
		}
		if time.Now().After(end) {
			t.Fatal("the first finish never returned")
		}
	}

	store.mu.Lock()
	defer store.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if store.lease.IsZero() || !store.returned.After(store.lease) {
		t.Fatalf("the first finish returned at %v, within its lease (ending %v): not slow enough to test", store.returned, store.lease)
	}
	if len(hits) != 1 {
		t.Errorf("the upstream got the delivery %d times, want once", len(hits))
	}
	if _, as, err := st.Get(context.Background(), "once"); err != nil || len(as) != 1 || as[0].Status != 200 {
		t.Fatalf("recorded attempts: %+v %v; want the one that was recorded", as, err)
	}
}
