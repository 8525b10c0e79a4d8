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
// may, either way. A body delivered twice carries one delivery id.
func TestQueuedSurvivesKill(t *testing.T) {
	const n, clients = 5000, 32
	bin := hookwallBinary(t)
	pub, adm, upAddr := freePort(t), freePort(t), freePort(t)
	dir := ghGateway{
		Listen: pub, Admin: adm, LogKeys: `level = "error"`, Upstream: "http://" + upAddr + "/in",
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
					if got != "" {
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
	if err := gw.Process.Kill(); err != nil { // SIGKILL: no drain, no release
		t.Fatal(err)
	}
	_ = gw.Wait()
	killedAt := done.Load()
	time.Sleep(300 * time.Millisecond)
	start()
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

	var accepted, refused, unanswered int
	for _, a := range answers {
		switch {
		case strings.HasPrefix(a, "202 "):
			accepted++
		case a == "":
			unanswered++
		default:
			refused++
		}
	}
	t.Logf("%d bodies sent (%d done when killed): %d accepted, %d refused, %d unanswered", len(answers), killedAt, accepted, refused, unanswered)
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
	dups := 0
	for body, ds := range delivered {
		a, sent := answers[body]
		switch {
		case !sent:
			t.Errorf("the upstream got a body nobody sent: %.60q", body)
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
	t.Logf("%d distinct bodies delivered, %d duplicate deliveries", len(delivered), dups)
}
