package main

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/examples/filters/internal/filtertest"
	"github.com/hookwall/hookwall/sdk/sdktest"
)

const testConfig = `{"max_depth":4,"max_bytes":256,"max_keys":5}`

// The tables run against the native harness and the committed .wasm
// (wasm_test.go): the same requests must give the same results.

func TestJSONGuard(t *testing.T) {
	for name, f := range both(t, testConfig) {
		t.Run(name, func(t *testing.T) { testJSONGuard(t, f) })
	}
}

func testJSONGuard(t *testing.T, f filtertest.Runner) {
	cases := []struct {
		name       string
		body       string
		declared   int // Content-Length header when > 0
		wantStatus int // 0: forwarded
		wantOK     string
		wantErr    string
	}{
		{name: "valid", body: `{"action":"opened","n":[1,2,{"x":null}]}`, wantOK: "true"},
		{name: "empty", body: ``, wantOK: "false"},
		{name: "too deep", body: `{"a":{"b":{"c":{"d":{}}}}}`, wantStatus: 422, wantOK: "false", wantErr: "too_deep"},
		{name: "too many keys", body: `{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}`, wantStatus: 422, wantOK: "false", wantErr: "too_many_keys"},
		{name: "invalid", body: `{"a":1,}`, wantStatus: 422, wantOK: "false", wantErr: "invalid"},
		{name: "truncated", body: `{"a":[1,2`, wantStatus: 422, wantOK: "false", wantErr: "invalid"},
		{name: "too big", body: `[` + strings.Repeat(`1,`, 200) + `1]`, wantStatus: 413, wantOK: "false", wantErr: "too_big"},
		{name: "declared too big", body: `{}`, declared: 1000, wantStatus: 413, wantOK: "false", wantErr: "too_big"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := sdktest.NewRequest("POST", "/hooks/github", []byte(c.body)).WithHeader("Content-Type", "application/json")
			if c.declared > 0 {
				req.Header.Set("Content-Length", strconv.Itoa(c.declared))
			}
			res, err := f.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			if wantNext := c.wantStatus == 0; res.Next != wantNext {
				t.Fatalf("next = %v, want %v (status %d %s)", res.Next, wantNext, res.Response.Status, res.Response.Body)
			}
			if c.wantStatus != 0 {
				if res.Response.Status != c.wantStatus || res.Response.Header.Get("Content-Type") != "application/json" ||
					!bytes.HasPrefix(res.Response.Body, []byte(`{"error":`)) {
					t.Errorf("response = %d %q %s", res.Response.Status, res.Response.Header.Get("Content-Type"), res.Response.Body)
				}
			} else if string(res.Forwarded.Body) != c.body {
				t.Errorf("forwarded body changed: %q", res.Forwarded.Body)
			}
			if res.Labels["json_ok"] != c.wantOK || res.Labels["json_error"] != c.wantErr {
				t.Errorf("labels = %v, want json_ok=%s json_error=%s", res.Labels, c.wantOK, c.wantErr)
			}
		})
	}
}

// TestJSONGuardLargeValidBody crosses many read chunks.
func TestJSONGuardLargeValidBody(t *testing.T) {
	for name, f := range both(t, ``) { // defaults: 1 MiB, depth 32, 10000 keys
		t.Run(name, func(t *testing.T) { testLargeValidBody(t, f) })
	}
}

func testLargeValidBody(t *testing.T, f filtertest.Runner) {
	var b strings.Builder
	b.WriteString(`{"items":[`)
	for i := range 4999 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"id":` + strconv.Itoa(i) + `,"s":"` + strings.Repeat("é", 40) + `"}`)
	}
	b.WriteString(`]}`)
	body := b.String()
	if len(body) < 4*chunk || len(body) > 1<<20 {
		t.Fatalf("test body is %d bytes; want several chunks under 1 MiB", len(body))
	}
	res, err := f.Do(sdktest.NewRequest("POST", "/", []byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Forwarded.Body) != body {
		t.Error("forwarded body differs from the received one")
	}
	if !res.Next || res.Labels["json_ok"] != "true" {
		t.Fatalf("large valid body: next=%v labels=%v body=%s", res.Next, res.Labels, res.Response.Body)
	}
	// 4999 objects × 2 keys + 1 = 9999 keys; two more are one over the default.
	res, err = f.Do(sdktest.NewRequest("POST", "/", []byte(strings.Replace(body, `{"items"`, `{"x":0,"y":0,"items"`, 1))))
	if err != nil {
		t.Fatal(err)
	}
	if res.Next || res.Labels["json_error"] != "too_many_keys" {
		t.Fatalf("10001 keys: next=%v labels=%v", res.Next, res.Labels)
	}
}

var badConfigs = []string{`{"max_depth":0}`, `{"max_bytes":-1}`, `{"max_keys":-1}`, `{"max_depth":100000}`, `{"maxdepth":3}`, `[`}

func TestJSONGuardConfig(t *testing.T) {
	for _, cfg := range badConfigs {
		if _, err := sdktest.New(cfg); err == nil {
			t.Errorf("config %s accepted", cfg)
		}
	}
	for _, cfg := range []string{``, `{}`, ` {"max_keys":0} `, testConfig} {
		if _, err := sdktest.New(cfg); err != nil {
			t.Errorf("config %q rejected: %v", cfg, err)
		}
	}
}
