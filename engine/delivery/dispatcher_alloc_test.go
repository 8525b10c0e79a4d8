//go:build !race

package delivery_test

import (
	"context"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/sqlite"
)

// budgetDelivery is the allocation budget of delivering one stored request (claim, attempt,
// recorded result) through a SQLite store to a loopback upstream, measured over the whole
// process as the request path's budgets are. A regression guard: lower it when delivering
// gets cheaper. (4 of them are fasthttp's streamed answer body, which lets the status decide
// an attempt whatever its body does.)
const budgetDelivery = 20

// TestDeliveryAllocationBudget measures up to three runs and passes on the first within the
// budget: how many deliveries each claim takes depends on how the workers free up, which a
// loaded machine (CI runs every package at once) changes, and smaller claims cost more
// allocations a delivery; a regression raises every run.
func TestDeliveryAllocationBudget(t *testing.T) {
	var runs []float64
	for range 3 {
		per := deliveryAllocs(t)
		runs = append(runs, per)
		t.Logf("%.1f allocs per delivery (budget %d)", per, budgetDelivery)
		if per <= budgetDelivery {
			return
		}
	}
	t.Errorf("a delivery allocates %.1f times in each of %d runs, over the budget of %d", runs, len(runs), budgetDelivery)
}

// deliveryAllocs delivers n stored requests and returns the process's allocations a delivery.
func deliveryAllocs(t *testing.T) float64 {
	t.Helper()
	const n = 512
	addr, reached := slowUpstream(t, 0, 200, nil)
	store, err := sqlite.Open(sqlite.Options{Path: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	client := &fasthttp.HostClient{Addr: addr}
	var final atomic.Int32
	d := delivery.NewDispatcher(delivery.Options{
		Store: store,
		Target: func(string, int) (delivery.Target, func(), bool) {
			return delivery.Target{Client: client, Scheme: "http", Host: addr, Timeout: 5 * time.Second}, func() {}, true
		},
		Final: func(*delivery.Record, delivery.Result) { final.Add(1) },
		// Few workers: each one's first attempts (its connection, its buffers) weigh little
		// beside the steady state.
		Owner: "gw1", Lease: time.Hour, Poll: 20 * time.Millisecond, Workers: 8,
	})
	// The requests are stored before the dispatcher runs: only their delivery is counted.
	hs := []delivery.Header{{"Content-Type", "application/json"}, {"User-Agent", "GitHub-Hookshot/abc"},
		{"X-Github-Event", "push"}, {"X-Hub-Signature-256", "sha256=" + strings.Repeat("0", 64)},
		{"X-Forwarded-For", "192.0.2.1"}, {"X-Forwarded-Host", "hooks.example"}, {"X-Forwarded-Proto", "http"}}
	body := []byte(`{"pad":"` + strings.Repeat("x", 2000) + `"}`)
	now := time.Now()
	for i := range n {
		r := &delivery.Record{ID: delivery.NewID(), Route: "r", Method: "POST", URI: "/hooks/" + strconv.Itoa(i),
			Headers: append(hs, delivery.Header{Name: "X-Github-Delivery", Value: strconv.Itoa(i)}), Body: body, ReceivedAt: now, NextAt: now}
		if err := d.Enqueue(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	ctx, cancel := context.WithCancel(context.Background())
	go d.Run(ctx)
	for end := time.Now().Add(30 * time.Second); final.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d of %d delivered after 30s", final.Load(), n)
		}
	}
	runtime.ReadMemStats(&m1)
	cancel()
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := reached.Load(); got != n {
		t.Fatalf("the upstream got %d requests, want %d", got, n)
	}
	return float64(m1.Mallocs-m0.Mallocs) / n
}
