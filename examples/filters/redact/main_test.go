package main

import (
	"encoding/json"
	"testing"

	"github.com/hookwall/hookwall/examples/filters/internal/filtertest"
	"github.com/hookwall/hookwall/sdk/sdktest"
)

// The tables run against the native harness and the committed .wasm
// (wasm_test.go): the same requests must give the same results.

func TestRedactFilter(t *testing.T) {
	for name, f := range both(t, ``) {
		t.Run(name, func(t *testing.T) { testRedact(t, f) })
	}
}

func testRedact(t *testing.T, f filtertest.Runner) {
	cases := []struct {
		name, ctype, body, want, label string
	}{
		{"json", "application/json; charset=utf-8",
			`{"customer":{"email":"alice@example.com","card":"4242 4242 4242 4242"},"id":4242424242424242}`,
			`{"customer":{"email":"*****@*******.com","card":"**** **** **** 4242"},"id":4242424242424242}`, "2"},
		{"+json type", "application/vnd.github+json", `["x@y.io"]`, `["*@*.io"]`, "1"},
		{"form as text", "application/x-www-form-urlencoded", `to=bob@corp.com&n=5555555555554444`, `to=***@****.com&n=************4444`, "2"},
		{"nothing to redact", "application/json", `{"a":1}`, `{"a":1}`, "0"},
		{"empty", "", ``, ``, "0"},
		// JSON is JSON whatever it is labelled: its numbers stay numbers.
		{"json without content type", "", `{"id":4111111111111111,"card":"4111111111111111"}`,
			`{"id":4111111111111111,"card":"************1111"}`, "1"},
		{"json as text/plain", "text/plain", ` [4111111111111111, "a@b.io"]`, ` [4111111111111111, "*@*.io"]`, "1"},
		{"bare json number", "", `4111111111111111`, `4111111111111111`, "0"},
		{"not json: text", "text/plain", `{"id":4111111111111111`, `{"id":************1111`, "1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := sdktest.NewRequest("POST", "/hooks/shop", []byte(c.body))
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			res, err := f.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Next {
				t.Fatal("redact must always forward")
			}
			if string(res.Forwarded.Body) != c.want {
				t.Errorf("forwarded %s\nwant      %s", res.Forwarded.Body, c.want)
			}
			if res.Labels["redacted"] != c.label {
				t.Errorf("label redacted = %q, want %q", res.Labels["redacted"], c.label)
			}
			if json.Valid([]byte(c.body)) && !json.Valid(res.Forwarded.Body) {
				t.Errorf("valid JSON forwarded as invalid JSON: %s", res.Forwarded.Body)
			}
			if string(req.Body) != c.body {
				t.Error("the received body was modified; only the forwarded copy may change")
			}
		})
	}
}

var badConfigs = []string{`{"emails":false,"cards":false}`, `{"phones":true}`, `{`}

func TestRedactConfig(t *testing.T) {
	for name, f := range both(t, `{"cards":false}`) {
		t.Run(name, func(t *testing.T) {
			res, err := f.Do(sdktest.NewRequest("POST", "/", []byte(`a@b.io 4242424242424242`)))
			if err != nil {
				t.Fatal(err)
			}
			if got := string(res.Forwarded.Body); got != `*@*.io 4242424242424242` {
				t.Errorf("cards off: forwarded %q", got)
			}
		})
	}
	for _, cfg := range badConfigs {
		if _, err := sdktest.New(cfg); err == nil {
			t.Errorf("config %s accepted", cfg)
		}
	}
}
