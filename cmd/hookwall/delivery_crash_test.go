package main

import (
	"bytes"
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

	"github.com/hookwall/hookwall/engine/delivery/postgres/pgtest"
)

// githubWebhook is a POST of body to url signed as GitHub does with the secret "s3cret".
func githubWebhook(url string, body []byte) *http.Request {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("X-Hub-Signature-256", githubSignature("s3cret", string(body)))
	return req
}

// TestQueuedSurvivesKill runs the real binary with a queued, GitHub-verified route whose
// upstream is down, sends N signed webhooks from concurrent clients, kill -9s the gateway
// half-way, restarts it on the same store, then brings the upstream up. Every request
// that got 202 must reach the upstream byte for byte under its delivery id; a request that
// got another answer must not reach it at all; one that got no answer (the kill cut it)
// may, either way. A body delivered twice carries one delivery id. For both stores.
func TestQueuedSurvivesKill(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) { queuedSurvives(t, "", nil) })
	t.Run("postgres", func(t *testing.T) {
		queuedSurvives(t, pgStore(pgtest.Start(t).NewDatabase(t)), nil)
	})
}

// TestQueuedSurvivesAStoreCrash is TestQueuedSurvivesKill with the PostgreSQL server
// crashed half-way (one of its processes killed with -9: it ends every connection and
// recovers from its write-ahead log) under the running gateway. The crash may undo the
// last leases, whose commits do not wait for the log: their deliveries are attempted
// again. A request answered 503 meanwhile is sent again, as a provider does; its first
// body may still be delivered, when the crash ended the connection between the insert's
// commit and its answer.
func TestQueuedSurvivesAStoreCrash(t *testing.T) {
	srv := pgtest.Start(t)
	queuedSurvives(t, pgStore(srv.NewDatabase(t)), func() { srv.Crash(t) })
}

// pgStore is the [delivery] keys of a PostgreSQL store.
func pgStore(url string) string { return fmt.Sprintf("store = \"postgres\"\nurl = %q", url) }

// queuedSurvives is TestQueuedSurvivesKill on the store the [delivery] keys store name
// (none: SQLite). With crashStore, that is called half-way instead of the kill.
func queuedSurvives(t *testing.T, store string, crashStore func()) {
	const n, clients = 5000, 32
	bin := hookwallBinary(t)
	pub, adm, upAddr := freePort(t), freePort(t), freePort(t)
	dir := ghGateway{
		Listen: pub, Admin: adm, LogKeys: `level = "error"`, Upstream: "http://" + upAddr + "/in", Delivery: store,
		RouteKeys: fmt.Sprintf("timeout = \"2s\"\ndelivery = \"queued\"\nretry = [%s]", strings.TrimSuffix(strings.Repeat(`"1s",`, 100), ",")),
	}.tree(t)
	start := func() *exec.Cmd {
		cmd, _ := startHookwall(t, bin, dir, adm, "HW_TEST_SECRET=s3cret")
		return cmd
	}
	gw := start()

	// answers: body → what the client got for it ("202 <id>", "status <n>", or "" for none).
	var mu sync.Mutex
	answers := map[string]string{}
	var done atomic.Int32
	killAt := make(chan struct{})
	var once sync.Once
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	send := func(body []byte) string {
		req := githubWebhook("http://"+pub+"/hooks/github", body)
		req.Header.Set("Content-Type", "application/json")
		r, err := hc.Do(req)
		if err != nil {
			return ""
		}
		defer r.Body.Close()
		_, _ = io.Copy(io.Discard, r.Body)
		if r.StatusCode == 202 {
			return "202 " + r.Header.Get("Hookwall-Delivery-Id")
		}
		return fmt.Sprint("status ", r.StatusCode)
	}
	var wg sync.WaitGroup
	deadline := time.Now().Add(60 * time.Second)
	for c := range clients {
		wg.Go(func() {
			for i := c; i < n; i += clients {
				// A provider retries until it gets an answer; each try is its own body,
				// so what reaches the upstream says which try it came from.
				for try := 0; time.Now().Before(deadline); try++ {
					body := fmt.Appendf(nil, `{"seq":%d,"try":%d,"pad":"%s"}`, i, try, strings.Repeat("x", i%300))
					got := send(body)
					mu.Lock()
					answers[string(body)] = got
					mu.Unlock()
					if got != "" && (crashStore == nil || got != "status 503") {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				if done.Add(1) == n/2 {
					once.Do(func() { close(killAt) })
				}
			}
		})
	}
	<-killAt
	faultAt := done.Load()
	if crashStore != nil {
		crashStore()
	} else {
		if err := gw.Process.Kill(); err != nil { // SIGKILL: no drain, no release
			t.Fatal(err)
		}
		_ = gw.Wait()
		time.Sleep(300 * time.Millisecond)
		start()
	}
	wg.Wait()

	// The upstream comes up; it records every delivery.
	type got struct{ id, attempt string }
	var umu sync.Mutex
	delivered := map[string][]got{}
	ln, err := net.Listen("tcp", upAddr)
	if err != nil {
		t.Fatal(err)
	}
	usrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		umu.Lock()
		delivered[string(b)] = append(delivered[string(b)], got{r.Header.Get("Hookwall-Delivery-Id"), r.Header.Get("Hookwall-Attempt")})
		umu.Unlock()
		if r.URL.Path != "/in/hooks/github" {
			w.WriteHeader(400)
		}
	})}
	go usrv.Serve(ln) //nolint:errcheck
	defer usrv.Close()

	var accepted, refused, unanswered, unavailable int
	for _, a := range answers {
		switch {
		case strings.HasPrefix(a, "202 "):
			accepted++
		case a == "":
			unanswered++
		case a == "status 503":
			unavailable++
		default:
			refused++
		}
	}
	t.Logf("%d bodies sent (%d done at the fault): %d accepted, %d refused, %d answered 503, %d unanswered", len(answers), faultAt, accepted, refused, unavailable, unanswered)
	if crashStore != nil && unavailable == 0 {
		t.Errorf("no request was answered 503 around the store's crash: did it crash?")
	}
	if accepted < n*9/10 {
		t.Fatalf("only %d of %d requests were accepted", accepted, n)
	}
	missing := func() int {
		umu.Lock()
		defer umu.Unlock()
		m := 0
		for body, a := range answers {
			if strings.HasPrefix(a, "202 ") && len(delivered[body]) == 0 {
				m++
			}
		}
		return m
	}
	for end := time.Now().Add(60 * time.Second); missing() > 0; {
		if time.Now().After(end) {
			t.Fatalf("%d accepted requests were never delivered", missing())
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // late duplicates, if any, arrive too
	umu.Lock()
	defer umu.Unlock()
	dups, stored503 := 0, 0
	for body, ds := range delivered {
		a, sent := answers[body]
		switch {
		case !sent:
			t.Errorf("the upstream got a body nobody sent: %.60q", body)
		case a == "status 503" && crashStore != nil:
			stored503++
		case strings.HasPrefix(a, "status "):
			t.Errorf("a request answered %q was delivered", a)
		case strings.HasPrefix(a, "202 ") && ds[0].id != strings.TrimPrefix(a, "202 "):
			t.Errorf("delivered under id %s, acknowledged as %s", ds[0].id, a)
		}
		for _, d := range ds[1:] {
			dups++
			if d.id != ds[0].id {
				t.Errorf("one body delivered under two ids: %s and %s", ds[0].id, d.id)
			}
		}
	}
	t.Logf("%d distinct bodies delivered, %d duplicate deliveries, %d bodies answered 503 delivered", len(delivered), dups, stored503)
}
