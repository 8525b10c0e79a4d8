package main

import (
	"strings"
	"testing"

	"github.com/hookwall/hookwall/examples/filters/internal/filtertest"
	"github.com/hookwall/hookwall/sdk/sdktest"
)

const testConfig = `{"allow":["push","ping"]}`

// The tables run against the native harness and the committed .wasm
// (wasm_test.go): the same requests must give the same results.

func TestEventAllow(t *testing.T) {
	for name, f := range both(t, testConfig) {
		t.Run(name, func(t *testing.T) { testEventAllow(t, f) })
	}
}

func testEventAllow(t *testing.T, f filtertest.Runner) {
	cases := []struct {
		name      string
		event     string // "" sends no header
		wantNext  bool
		wantLabel string // "" means no label
	}{
		{"allowed", "push", true, "push"},
		{"also allowed", "ping", true, "ping"},
		{"not listed", "issues", false, "issues"},
		{"case matters", "Push", false, "Push"},
		{"missing header", "", false, ""},
		{"absurdly long", strings.Repeat("x", maxEventLen+1), false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := sdktest.NewRequest("POST", "/hooks/github", []byte(`{}`))
			if c.event != "" {
				req.Header.Set("X-GitHub-Event", c.event)
			}
			res, err := f.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Next != c.wantNext {
				t.Fatalf("next = %v, want %v", res.Next, c.wantNext)
			}
			if !c.wantNext && res.Response.Status != 403 {
				t.Errorf("status = %d, want 403", res.Response.Status)
			}
			if got, ok := res.Labels["event"]; got != c.wantLabel || ok != (c.wantLabel != "") {
				t.Errorf("label event = %q (set %v), want %q", got, ok, c.wantLabel)
			}
			if c.wantNext && string(res.Forwarded.Body) != `{}` {
				t.Errorf("forwarded body changed: %q", res.Forwarded.Body)
			}
		})
	}
}

func TestEventAllowCustomHeader(t *testing.T) {
	for name, f := range both(t, `{"header":"X-Event-Key","allow":["repo:push"]}`) {
		t.Run(name, func(t *testing.T) { testCustomHeader(t, f) })
	}
}

func testCustomHeader(t *testing.T, f filtertest.Runner) {
	req := sdktest.NewRequest("POST", "/hooks/bitbucket", nil).WithHeader("x-event-key", "repo:push")
	res, err := f.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Next || res.Labels["event"] != "repo:push" {
		t.Errorf("next=%v labels=%v, want forwarded with event=repo:push", res.Next, res.Labels)
	}
	// The default header is not consulted once another is configured.
	res, err = f.Do(sdktest.NewRequest("POST", "/", nil).WithHeader("X-GitHub-Event", "repo:push"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Next {
		t.Error("forwarded on the default header")
	}
}

// TestEventAllowRepeatedHeader: the event header more than once is refused,
// whatever the values: the upstream gets every copy, and an allowed first one
// must not carry a second that is not.
func TestEventAllowRepeatedHeader(t *testing.T) {
	for name, f := range both(t, testConfig) {
		t.Run(name, func(t *testing.T) {
			for _, events := range [][]string{{"push", "delete"}, {"push", "push"}, {"delete", "push"}, {"push", ""}} {
				req := sdktest.NewRequest("POST", "/hooks/github", []byte(`{}`))
				for _, ev := range events {
					req.Header.Add("X-GitHub-Event", ev)
				}
				res, err := f.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				if res.Next || res.Response.Status != 403 || string(res.Response.Body) != "more than one event type\n" {
					t.Errorf("%q: next=%v status=%d body=%q, want 403 more than one event type", events, res.Next, res.Response.Status, res.Response.Body)
				}
				if _, ok := res.Labels["event"]; ok {
					t.Errorf("%q: label event set to %q", events, res.Labels["event"])
				}
			}
		})
	}
}

var badConfigs = []string{``, `{}`, `{"allow":[]}`, `{"header":"","allow":["push"]}`, `{"allow":["push"],"typo":1}`, `not json`}

func TestEventAllowConfigErrors(t *testing.T) {
	for _, cfg := range badConfigs {
		if _, err := sdktest.New(cfg); err == nil {
			t.Errorf("config %q accepted", cfg)
		}
	}
}
