package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/gateway"
)

// TestDeliveriesCLI drives a running gateway's delivery store through the CLI: a webhook
// the upstream refuses for good is dead; list shows it, show shows its attempts and body,
// replay delivers it once the upstream accepts, bulk replay and purge work by filter and id.
func TestDeliveriesCLI(t *testing.T) {
	var accept atomic.Bool
	var reached atomic.Int32
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	usrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		if !accept.Load() {
			w.WriteHeader(http.StatusGone)
		}
	})}
	go usrv.Serve(uln) //nolint:errcheck
	defer usrv.Close()
	adm := freePort(t)
	dir := writeTree(t, map[string]string{
		"gateway.toml": fmt.Sprintf(`
[server]
listen = "127.0.0.1:0"
[admin]
listen = %q
token = "t0ken"
[log]
decisions = "off"
[delivery]
inspect_bodies = true
[secrets]
gh = {env = "HW_TEST_SECRET"}
[[route]]
name = "gh"
path = "/hooks/github"
upstream = "http://%s"
policy = "routes.gh"
delivery = "queued"
`, adm, uln.Addr()),
		"policies/gh.rego": "package routes.gh\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"gh\"}).valid\n",
	})
	cfg := filepath.Join(dir, "gateway.toml")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan *gateway.Gateway, 1)
	g, err := gateway.New(ctx, cfg, gateway.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Getenv: func(k string) (string, bool) { return "s3cret", k == "HW_TEST_SECRET" },
		Ready:  func(g *gateway.Gateway) { ready <- g },
	})
	if err != nil {
		t.Fatal(err)
	}
	runDone := make(chan error, 1)
	go func() { runDone <- g.Run(ctx, 5*time.Second) }()
	defer func() { cancel(); <-runDone }()
	<-ready
	pub, _ := g.Addrs()

	post := func(body string) string {
		r, err := http.DefaultClient.Do(githubWebhook("http://"+pub.String()+"/hooks/github", []byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != 202 {
			t.Fatalf("post: %d", r.StatusCode)
		}
		return r.Header.Get("Hookwall-Delivery-Id")
	}
	cli := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(ctx, append([]string{"deliveries"}, append(args, "-c", cfg)...), &out, &errb); code != want {
			t.Fatalf("hookwall deliveries %v: exit %d, want %d\n%s%s", args, code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	type shown struct {
		State      string `json:"state"`
		Attempts   int    `json:"attempts"`
		Body       string `json:"body"`
		AttemptLog []struct {
			N      int    `json:"n"`
			Status int    `json:"status"`
			Error  string `json:"error"`
		} `json:"attempt_log"`
	}
	show := func(id string) shown {
		t.Helper()
		var s shown
		if err := json.Unmarshal([]byte(cli(0, "show", id)), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	waitState := func(id, state string) shown {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if s := show(id); s.State == state {
				return s
			}
			if time.Now().After(end) {
				t.Fatalf("%s never became %s: %+v", id, state, show(id))
			}
		}
	}

	id := post(`{"n":1}`)
	s := waitState(id, "dead")
	if s.Attempts != 1 || len(s.AttemptLog) != 1 || s.AttemptLog[0].Status != 410 || s.Body != `{"n":1}` {
		t.Fatalf("show: %+v", s)
	}
	if out := cli(0, "list", "--state", "dead"); !strings.Contains(out, id) || !strings.Contains(out, "dead") || !strings.Contains(out, "upstream answered 410") {
		t.Fatalf("list:\n%s", out)
	}
	if out := cli(0, "list", "--state", "delivered"); strings.Contains(out, id) {
		t.Fatalf("list --state delivered shows a dead one:\n%s", out)
	}
	accept.Store(true)
	if out := cli(0, "replay", id); !strings.Contains(out, `"replayed": 1`) {
		t.Fatalf("replay: %s", out)
	}
	if s := waitState(id, "delivered"); s.Attempts != 2 || s.AttemptLog[1].Status != 200 {
		t.Fatalf("after replay: %+v", s)
	}

	accept.Store(false)
	a, b := post(`{"n":2}`), post(`{"n":3}`)
	waitState(a, "dead")
	waitState(b, "dead")
	accept.Store(true)
	if out := cli(0, "replay", "--state", "dead", "--route", "gh"); !strings.Contains(out, `"replayed": 2`) {
		t.Fatalf("bulk replay: %s", out)
	}
	waitState(a, "delivered")
	waitState(b, "delivered")
	if out := cli(1, "replay"); !strings.Contains(out, "needs at least one of") {
		t.Fatalf("an unfiltered bulk replay: %s", out)
	}

	if out := cli(0, "purge", id); !strings.Contains(out, `"purged": 1`) {
		t.Fatalf("purge: %s", out)
	}
	if out := cli(1, "show", id); !strings.Contains(out, "404") {
		t.Fatalf("show after purge: %s", out)
	}
	if out := cli(1, "list", "--state", "later"); !strings.Contains(out, "400") {
		t.Fatalf("bad state: %s", out)
	}
}
