package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookwall/hookwall/engine/delivery/postgres/pgtest"
)

// TestFleetTakesOverAKilledGateway runs two real gateways on one PostgreSQL store. The
// upstream holds every delivery until both gateways have claimed work; gateway A is then
// killed with -9 while it holds leases, and the upstream lets deliveries through. Gateway
// B must deliver every accepted webhook, A's included once their leases expire, and no
// delivery may be in an attempt by two workers at once.
func TestFleetTakesOverAKilledGateway(t *testing.T) {
	const n = 400
	bin := hookwallBinary(t)
	dbURL := pgtest.Start(t).NewDatabase(t)

	var (
		mu        sync.Mutex
		inflight  = map[string]int{}
		delivered = map[string]int{}
		overlaps  []string
		waiting   atomic.Int32
		lastAt    time.Time
	)
	gate := make(chan struct{})
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	usrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("Hookwall-Delivery-Id")
		mu.Lock()
		inflight[id]++
		if inflight[id] > 1 {
			overlaps = append(overlaps, id)
		}
		mu.Unlock()
		defer func() {
			mu.Lock()
			inflight[id]--
			mu.Unlock()
		}()
		// Read first: only then does net/http notice a connection closed by a killed gateway
		// and end r.Context().
		_, _ = io.ReadAll(r.Body)
		waiting.Add(1)
		defer waiting.Add(-1)
		select {
		case <-gate:
		case <-r.Context().Done(): // the gateway died with the connection
			return
		}
		mu.Lock()
		delivered[id]++
		lastAt = time.Now()
		mu.Unlock()
	})}
	go usrv.Serve(uln) //nolint:errcheck
	defer usrv.Close()

	type gw struct {
		cmd      *exec.Cmd
		pub, adm string
	}
	start := func(name string) gw {
		g := gw{pub: freePort(t), adm: freePort(t)}
		dir := ghGateway{
			Listen: g.pub, Admin: g.adm, LogKeys: `level = "warn"`,
			Delivery: fmt.Sprintf("store = \"postgres\"\nurl = %q", dbURL),
			Upstream: "http://" + uln.Addr().String(),
			// The held attempts must outlast sending every webhook on a loaded machine: five
			// that time out in a row open a gateway's breaker for 30s, and its attempts pause.
			// The lease (twice the timeout and 5s) is how long A's deliveries wait after the kill.
			RouteKeys: fmt.Sprintf("timeout = \"5s\"\ndelivery = \"queued\"\nretry = [%s]", strings.TrimSuffix(strings.Repeat(`"500ms",`, 50), ",")),
		}.tree(t)
		var logs <-chan string
		g.cmd, logs = startHookwall(t, bin, dir, g.adm, "HW_TEST_SECRET=s3cret")
		keepLogs(t, "gateway "+name, logs)
		return g
	}
	a, b := start("a"), start("b")

	accepted := map[string]bool{}
	for i := range n {
		body := fmt.Appendf(nil, `{"seq":%d}`, i)
		target := a
		if i%2 == 1 {
			target = b
		}
		r, err := http.DefaultClient.Do(githubWebhook("http://"+target.pub+"/hooks/github", body))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 202 {
			t.Fatalf("webhook %d: %d", i, r.StatusCode)
		}
		accepted[r.Header.Get("Hookwall-Delivery-Id")] = true
	}
	// Both gateways' workers are now held at the upstream with their leases.
	for end := time.Now().Add(20 * time.Second); waiting.Load() < 100; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("only %d attempts reached the upstream", waiting.Load())
		}
	}
	// Both hold leases: the kill leaves some with a dead owner.
	if owners := leaseHolders(t, dbURL); len(owners) != 2 {
		t.Fatalf("lease holders before the kill: %v, want both gateways", owners)
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	killedAt := time.Now()
	time.Sleep(200 * time.Millisecond)
	close(gate)

	missing := func() int {
		mu.Lock()
		defer mu.Unlock()
		m := 0
		for id := range accepted {
			if delivered[id] == 0 {
				m++
			}
		}
		return m
	}
	for end := time.Now().Add(60 * time.Second); missing() > 0; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%d of %d accepted webhooks were never delivered after the kill", missing(), n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(overlaps) > 0 {
		t.Fatalf("%d deliveries were in an attempt by two workers at once, e.g. %s", len(overlaps), overlaps[0])
	}
	for id := range delivered {
		if !accepted[id] {
			t.Errorf("delivered %s, which was never accepted", id)
		}
	}
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	// The survivor records a delivery after the upstream answered it: give the last ones time.
	var pending int
	for end := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err := conn.QueryRow(context.Background(), `SELECT count(*) FROM hookwall_deliveries WHERE state <> 'delivered'`).Scan(&pending)
		if err == nil && pending == 0 {
			break
		}
		if err != nil || time.Now().After(end) {
			t.Fatalf("%d deliveries not recorded as delivered (%v)", pending, err)
		}
	}
	t.Logf("%d webhooks through two gateways, one killed holding leases: all delivered by the survivor, the last %v after the kill", n, lastAt.Sub(killedAt).Round(time.Millisecond))
}

// leaseHolders returns how many live leases each owner holds.
func leaseHolders(t *testing.T, dbURL string) map[string]int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT claimed_by, count(*) FROM hookwall_deliveries WHERE claimed_by IS NOT NULL AND lease_until > $1 GROUP BY claimed_by`, time.Now().UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var owner string
		var n int
		if err := rows.Scan(&owner, &n); err != nil {
			t.Fatal(err)
		}
		out[owner] = n
	}
	return out
}
