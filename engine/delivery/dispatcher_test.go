package delivery_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/delivery"
	"github.com/hookwall/hookwall/engine/delivery/sqlite"
)

// slowUpstream answers after hold; it counts the requests that reached it.
func slowUpstream(t *testing.T, hold time.Duration, status int, header map[string]string) (addr string, reached *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reached = &atomic.Int32{}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		reached.Add(1)
		time.Sleep(hold)
		for k, v := range header {
			ctx.Response.Header.Set(k, v)
		}
		ctx.SetStatusCode(status)
	}}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String(), reached
}

func setup(t *testing.T, addr string, timeout time.Duration) (*delivery.Dispatcher, delivery.Store) {
	t.Helper()
	return setupSigned(t, addr, timeout, nil)
}

// setupSigned is setup with the target signing each attempt with signKey (nil: none).
func setupSigned(t *testing.T, addr string, timeout time.Duration, signKey []byte) (*delivery.Dispatcher, delivery.Store) {
	t.Helper()
	store, err := sqlite.Open(sqlite.Options{Path: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	client := &fasthttp.HostClient{Addr: addr}
	d := delivery.NewDispatcher(delivery.Options{
		Store: store,
		Target: func(string, int) (delivery.Target, func(), bool) {
			return delivery.Target{Client: client, Scheme: "http", Host: addr, Timeout: timeout, Retry: []time.Duration{time.Second}, SignKey: signKey}, func() {}, true
		},
		Owner: "gw1", Lease: time.Hour, Poll: 20 * time.Millisecond,
	})
	return d, store
}

func enqueueOne(t *testing.T, d *delivery.Dispatcher) {
	t.Helper()
	now := time.Now()
	if err := d.Enqueue(context.Background(), &delivery.Record{ID: "x", Route: "r", Method: "POST", URI: "/", ReceivedAt: now, NextAt: now}); err != nil {
		t.Fatal(err)
	}
}

func waitReached(t *testing.T, reached *atomic.Int32) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); reached.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("the attempt never reached the upstream")
		}
	}
}

// shutDownMidAttempt runs a dispatcher (attempt timeout: timeout) on one delivery to an
// upstream that answers after hold, and shuts it down, with drain to finish, once the
// attempt reached the upstream. It returns the dispatcher's store and Shutdown's error.
func shutDownMidAttempt(t *testing.T, hold, timeout, drain time.Duration) (delivery.Store, error) {
	t.Helper()
	addr, reached := slowUpstream(t, hold, 200, nil)
	d, store := setup(t, addr, timeout)
	ctx, cancel := context.WithCancel(context.Background())
	go d.Run(ctx)
	enqueueOne(t, d)
	waitReached(t, reached)
	cancel()
	sctx, scancel := context.WithTimeout(context.Background(), drain)
	defer scancel()
	return store, d.Shutdown(sctx)
}

// A graceful shutdown lets an attempt in flight finish and records it.
func TestShutdownFinishesInFlight(t *testing.T) {
	store, err := shutDownMidAttempt(t, 300*time.Millisecond, 5*time.Second, 5*time.Second)
	if err != nil {
		t.Fatalf("a shutdown that let the attempt finish: %v", err)
	}
	r, as, err := store.Get(context.Background(), "x")
	if err != nil || r.State != delivery.StateDelivered || len(as) != 1 {
		t.Fatalf("after shutdown: %+v %+v %v", r, as, err)
	}
}

// A shutdown whose drain time runs out releases the lease of the attempt still running,
// so another worker can take the delivery over at once, and says so: the upstream may have
// that attempt already, so the stop was not clean.
func TestShutdownReleasesLeases(t *testing.T) {
	store, err := shutDownMidAttempt(t, 3*time.Second, 10*time.Second, 100*time.Millisecond)
	if !errors.Is(err, delivery.ErrAttemptsCut) || !strings.Contains(err.Error(), ": 1, ") || !strings.HasSuffix(err.Error(), ": x") {
		t.Errorf("Shutdown after the drain cut an attempt: %v, want ErrAttemptsCut naming x", err)
	}
	got, err := store.Claim(context.Background(), "gw2", time.Now(), time.Minute, 10, delivery.Routes{})
	if err != nil || len(got) != 1 {
		t.Fatalf("after a cut-short shutdown another worker claimed %v (%v), want the delivery", got, err)
	}
}

// A Retry-After from the upstream postpones the next attempt past the schedule's delay.
func TestRetryAfterHonoured(t *testing.T) {
	addr, _ := slowUpstream(t, 0, 503, map[string]string{"Retry-After": "7200"})
	d, store := setup(t, addr, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	enqueueOne(t, d)
	var r *delivery.Record
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		r, _, err = store.Get(context.Background(), "x")
		if err != nil {
			t.Fatal(err)
		}
		if r.Attempts == 1 {
			break
		}
		if time.Now().After(end) {
			t.Fatal("no attempt recorded")
		}
	}
	// The schedule says 1s; Retry-After asks 2h, capped at MaxRetryAfter (1h).
	wait := time.Until(r.NextAt)
	if r.State != delivery.StatePending || wait < 59*time.Minute || wait > time.Hour || r.LastStatus != 503 {
		t.Fatalf("after a 503 with Retry-After: state %s, next in %v, status %d", r.State, wait, r.LastStatus)
	}
}

// A route whose upstream keeps failing opens its circuit breaker: attempts pause (the
// deliveries' schedules are not spent), one probe goes out per cool-down, and the first
// answer closes it again.
func TestCircuitBreaker(t *testing.T) {
	var status atomic.Int32
	status.Store(503)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int32
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) { hits.Add(1); ctx.SetStatusCode(int(status.Load())) }}
	go srv.Serve(ln) //nolint:errcheck
	defer srv.Shutdown()
	store, err := sqlite.Open(sqlite.Options{Path: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	client := &fasthttp.HostClient{Addr: ln.Addr().String()}
	retry := make([]time.Duration, 100)
	for i := range retry {
		retry[i] = 10 * time.Millisecond
	}
	d := delivery.NewDispatcher(delivery.Options{
		Store: store, Owner: "gw", Lease: time.Minute, Poll: 10 * time.Millisecond, BreakerCooldown: 300 * time.Millisecond,
		Target: func(string, int) (delivery.Target, func(), bool) {
			return delivery.Target{Client: client, Scheme: "http", Host: ln.Addr().String(), Timeout: time.Second, Retry: retry}, func() {}, true
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	now := time.Now()
	for i := range 10 {
		if err := d.Enqueue(ctx, &delivery.Record{ID: string(rune('a' + i)), Route: "r", Method: "POST", URI: "/", ReceivedAt: now, NextAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)
	// Without the breaker ten deliveries retried every 10ms make hundreds of attempts.
	if n := hits.Load(); n > 25 {
		t.Fatalf("%d attempts in a second against a failing upstream: the breaker did not pause them", n)
	}
	if got := d.BreakersOpen(); len(got) != 1 || got[0] != (delivery.Destination{Route: "r"}) {
		t.Fatalf("open breakers: %v", got)
	}
	status.Store(200)
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ds, _ := store.Depth(ctx)
		if len(ds) == 1 && ds[0].State == delivery.StateDelivered && ds[0].Count == 10 {
			break
		}
		if time.Now().After(end) {
			t.Fatalf("after the upstream recovered: %+v", ds)
		}
	}
	if got := d.BreakersOpen(); len(got) != 0 {
		t.Fatalf("breaker still open after a delivery: %v", got)
	}
}

// The headers the dispatcher sets (its delivery id and attempt, and when it signs, the
// Standard Webhooks ones) reach the upstream once each, with its values: copies the client
// sent, stored with the request, are dropped, however many there were.
func TestDispatcherOwnsItsHeaders(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan map[string][]string, 1)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		h := map[string][]string{}
		for k, v := range ctx.Request.Header.All() {
			h[string(k)] = append(h[string(k)], string(v))
		}
		select {
		case got <- h:
		default:
		}
	}, DisableHeaderNamesNormalizing: true}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	d, _ := setupSigned(t, ln.Addr().String(), time.Second, []byte("0123456789abcdef0123456789abcdef"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)
	var forged []delivery.Header
	for _, name := range []string{delivery.HeaderID, delivery.HeaderAttempt, "webhook-id", "webhook-timestamp", "webhook-signature"} {
		forged = append(forged, delivery.Header{Name: name, Value: "forged-1"}, delivery.Header{Name: name, Value: "forged-2"})
	}
	now := time.Now()
	if err := d.Enqueue(context.Background(), &delivery.Record{ID: "d-owned", Route: "r", Method: "POST", URI: "/", Headers: forged, Body: []byte("{}"), ReceivedAt: now, NextAt: now}); err != nil {
		t.Fatal(err)
	}
	var h map[string][]string
	select {
	case h = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("the delivery never reached the upstream")
	}
	for _, name := range []string{delivery.HeaderID, delivery.HeaderAttempt, "webhook-id", "webhook-timestamp", "webhook-signature"} {
		var vs []string
		for k, v := range h {
			if strings.EqualFold(k, name) {
				vs = append(vs, v...)
			}
		}
		if len(vs) != 1 || strings.HasPrefix(vs[0], "forged") {
			t.Errorf("%s reached the upstream as %q, want the dispatcher's one value", name, vs)
		}
	}
}

// An answer whose body is over the client's bound still answered: a 2xx so answered is
// delivered once, not retried to the end of its schedule and dead.
func TestAnswerOverTheBodyBoundStillAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var reached atomic.Int32
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		reached.Add(1)
		ctx.SetBodyString(strings.Repeat("x", 4096))
	}}
	go srv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = srv.Shutdown() })
	addr := ln.Addr().String()
	store, err := sqlite.Open(sqlite.Options{Path: filepath.Join(t.TempDir(), "d.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	client := &fasthttp.HostClient{Addr: addr, MaxResponseBodySize: 1024}
	d := delivery.NewDispatcher(delivery.Options{
		Store: store,
		Target: func(string, int) (delivery.Target, func(), bool) {
			return delivery.Target{Client: client, Scheme: "http", Host: addr, Timeout: 2 * time.Second,
				Retry: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}}, func() {}, true
		},
		Owner: "gw1", Lease: time.Minute, Poll: 10 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	go d.Run(ctx)
	t.Cleanup(func() { cancel(); _ = d.Shutdown(context.Background()) })
	enqueueOne(t, d)
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r, _, err := store.Get(context.Background(), "x")
		if err == nil && r.State != delivery.StatePending {
			if r.State != delivery.StateDelivered || reached.Load() != 1 || r.LastStatus != 200 {
				t.Fatalf("an upstream that answered 200 with a 4 KiB body (bound 1 KiB) got the delivery %d times; it ended %s, status %d (%q)", reached.Load(), r.State, r.LastStatus, r.LastError)
			}
			return
		}
		if time.Now().After(end) {
			t.Fatalf("not finished: %+v %v", r, err)
		}
	}
}

// An upstream that answers 200 and then sends its declared body slower than the route's
// timeout took the webhook: the attempt is delivered on the status, sent once, not
// counted as no answer and sent again; the connection whose body was not read to its end
// is not reused, and the next delivery goes out on a new one.
func TestTwoHundredWithASlowBodyDelivers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var hits, conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func(c net.Conn) {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					hits.Add(1)
					// 2 of the 10 bytes declared, the rest long after the timeout.
					_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok"))
					time.Sleep(2 * time.Second)
					_, _ = c.Write([]byte("12345678"))
				}
			}(c)
		}
	}()
	d, store := setup(t, ln.Addr().String(), 300*time.Millisecond) // retry schedule: 1s
	ctx, cancel := context.WithCancel(context.Background())
	go d.Run(ctx)
	t.Cleanup(func() { cancel(); _ = d.Shutdown(context.Background()) })
	enqueueOne(t, d)
	waitState(t, store, "x", delivery.StateDelivered)
	now := time.Now()
	if err := d.Enqueue(context.Background(), &delivery.Record{ID: "y", Route: "r", Method: "POST", URI: "/", ReceivedAt: now, NextAt: now}); err != nil {
		t.Fatal(err)
	}
	waitState(t, store, "y", delivery.StateDelivered)
	time.Sleep(1200 * time.Millisecond) // past the retry schedule's 1s
	r, as, err := store.Get(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 2 || len(as) != 1 || as[0].Status != 200 || r.State != delivery.StateDelivered {
		t.Fatalf("the upstream got %d requests for 2 webhooks; x: %s, attempts %+v", hits.Load(), r.State, as)
	}
	if conns.Load() != 2 {
		t.Fatalf("%d connections for 2 deliveries: one whose body was not read is reused", conns.Load())
	}
}
