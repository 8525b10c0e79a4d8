package main

import (
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeliveriesCLI drives a running gateway's delivery store through the CLI: a webhook
// the upstream refuses for good is dead; list shows it, show shows its attempts and body,
// replay delivers it once the upstream accepts, bulk replay and purge work by filter and id.
func TestDeliveriesCLI(t *testing.T) {
	upURL, accept, _ := startRefusingUpstream(t, http.StatusGone)
	adm := freePort(t)
	dir := ghGateway{
		Listen: "127.0.0.1:0", Admin: adm, AdminKeys: `token = "t0ken"`,
		Delivery: "inspect_bodies = true", Upstream: upURL, RouteKeys: `delivery = "queued"`,
	}.tree(t)
	cfg := filepath.Join(dir, "gateway.toml")
	t.Setenv("HW_TEST_SECRET", "s3cret")
	pub, _, _ := runGateway(t, cfg)

	post := func(body string) string {
		r, err := http.DefaultClient.Do(githubWebhook(pub+"/hooks/github", []byte(body)))
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
		out, errs := hookwall(t, want, append([]string{"deliveries"}, append(args, "-c", cfg)...)...)
		return out + errs
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
