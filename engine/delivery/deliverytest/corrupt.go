package deliverytest

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/delivery"
)

// CorruptRow checks that one stored row whose headers do not decode stops nothing: a
// Dispatcher over the store (plain, and Sealed) delivers the deliveries beside it and one
// enqueued after it, and makes it dead, never attempted, with an error saying why, through
// the refusal hook (Options.Refused; Sealed's dead), or, without one, Final and Attempted
// (dead). fresh returns an Opener over a new,
// empty location and corrupt, which damages a delivery's stored headers there (the store
// is closed while it runs).
func CorruptRow(t *testing.T, fresh func(t *testing.T) (open Opener, corrupt func(id string))) {
	kr, err := delivery.NewKeyring([]delivery.Key{{ID: "k1", Value: []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")}})
	must(t, err)
	for _, c := range []struct {
		name         string
		sealed, hook bool
	}{{"Plain", false, true}, {"PlainNoRefusedHook", false, false}, {"Sealed", true, true}} {
		t.Run(c.name, func(t *testing.T) {
			open, corrupt := fresh(t)
			testCorruptRow(t, open, corrupt, kr, c.sealed, c.hook)
		})
	}
}

// refusal is one call of a refusal hook.
type refusal struct {
	id, lastError string
	state         delivery.State
	cause         error
}

func testCorruptRow(t *testing.T, open Opener, corrupt func(id string), kr *delivery.Keyring, sealed, hook bool) {
	ctx := context.Background()
	var mu sync.Mutex
	var refused []refusal
	var final, dead []string
	refuse := func(r *delivery.Record, _ delivery.Result, cause error) {
		mu.Lock()
		defer mu.Unlock()
		refused = append(refused, refusal{r.ID, r.LastError, r.State, cause})
	}
	wrap := func(s delivery.Store) delivery.Store {
		if sealed {
			return delivery.Sealed(s, kr, refuse)
		}
		return s
	}
	// Three deliveries, the corrupt one the oldest due: every claim reads it first.
	now := time.Now()
	s := wrap(open(0))
	for i, id := range []string{"c1", "c2", "c3"} {
		r := rec(id, "r", now.Add(time.Duration(i-3)*time.Second))
		must(t, s.Enqueue(ctx, r))
	}
	must(t, s.Close())
	corrupt("c1")

	addr, reached := idUpstream(t)
	s = wrap(open(0))
	t.Cleanup(func() { _ = s.Close() })
	client := &fasthttp.HostClient{Addr: addr}
	o := delivery.Options{
		Store: s,
		Target: func(string, int) (delivery.Target, func(), bool) {
			return delivery.Target{Client: client, Scheme: "http", Host: addr, Timeout: 5 * time.Second}, func() {}, true
		},
		Final: func(r *delivery.Record, _ delivery.Result) {
			mu.Lock()
			defer mu.Unlock()
			final = append(final, r.ID)
		},
		Attempted: func(route string, outcome delivery.AttemptOutcome) {
			mu.Lock()
			defer mu.Unlock()
			if outcome == delivery.AttemptDead {
				dead = append(dead, route)
			}
		},
		Owner: "gw", Lease: time.Minute, Poll: 20 * time.Millisecond,
	}
	if hook {
		o.Refused = refuse
	}
	d := delivery.NewDispatcher(o)
	runCtx, cancel := context.WithCancel(ctx)
	go d.Run(runCtx)
	defer func() {
		cancel()
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		defer scancel()
		_ = d.Shutdown(sctx)
	}()

	waitStates := func(want map[string]delivery.State) {
		t.Helper()
		got := map[string]delivery.State{}
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			rs, err := s.List(ctx, delivery.Query{})
			if err != nil {
				// A listing reads the damaged row's columns too, until its refusal rewrites them.
				if time.Now().After(end) {
					t.Fatalf("list: %v", err)
				}
				continue
			}
			ok := true
			for _, r := range rs {
				got[r.ID] = r.State
			}
			for id, st := range want {
				ok = ok && got[id] == st
			}
			if ok {
				return
			}
			if time.Now().After(end) {
				t.Fatalf("states = %v, want %v (upstream reached by %v)", got, want, reached())
			}
		}
	}
	waitStates(map[string]delivery.State{"c1": delivery.StateDead, "c2": delivery.StateDelivered, "c3": delivery.StateDelivered})

	// A webhook enqueued after it is delivered too.
	must(t, d.Enqueue(ctx, rec("c4", "r", time.Now())))
	waitStates(map[string]delivery.State{"c4": delivery.StateDelivered})

	if got := reached(); slices.Contains(got, "c1") || len(got) != 3 {
		t.Errorf("the upstream got %v, want c2, c3 and c4, never c1", got)
	}
	rs, err := s.List(ctx, delivery.Query{State: delivery.StateDead})
	must(t, err)
	if len(rs) != 1 || rs[0].ID != "c1" || !strings.Contains(rs[0].LastError, "never delivered: purge it") || rs[0].Attempts != 1 {
		t.Fatalf("dead deliveries = %+v, want c1, its last error saying its row is damaged and it is never delivered", rs)
	}
	mu.Lock()
	defer mu.Unlock()
	if !hook {
		// No refusal hook: Final and Attempted (dead) tell of it, as of any dead delivery.
		if len(refused) != 0 || !slices.Contains(final, "c1") || len(dead) != 1 {
			t.Errorf("refusals %v, Final %v, dead attempts %v: want Final for c1 and one dead", refused, final, dead)
		}
		return
	}
	if len(refused) != 1 || refused[0].id != "c1" || refused[0].state != delivery.StateDead || !errors.Is(refused[0].cause, delivery.ErrCorrupt) || refused[0].lastError != rs[0].LastError {
		t.Errorf("refusals = %+v, want c1 once, dead, its cause ErrCorrupt", refused)
	}
	if slices.Contains(final, "c1") {
		t.Errorf("Final was called for the refused c1 (Refused is set): %v", final)
	}
}

// idUpstream answers 200 and reports the Hookwall-Delivery-Id of each request it got.
func idUpstream(t *testing.T) (addr string, reached func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	var mu sync.Mutex
	var got []string
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		mu.Lock()
		got = append(got, string(ctx.Request.Header.Peek(delivery.HeaderID)))
		mu.Unlock()
	}}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String(), func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}
