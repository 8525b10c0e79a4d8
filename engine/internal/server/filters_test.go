package server

import (
	"fmt"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"
)

// watFilter compiles the WebAssembly text src with wat2wasm (wabt) and returns the module's
// path, for a [[filter]] module key.
func watFilter(t *testing.T, src string) string {
	t.Helper()
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not installed (apt install wabt)")
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "filter.wat"), filepath.Join(dir, "filter.wasm")
	if err := os.WriteFile(in, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(wat2wasm, in, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm: %v\n%s", err, b)
	}
	return out
}

// setHeadersGuest is a filter that, on the request (kind 0, in handle_request) or on the
// upstream's answer (kind 1, in handle_response, after asking for buffer_response), sets
// name to value and X-Multi to "3" with set_header_value, then reads name back with
// get_header_values and reports what it read in the same message: X-Seen-Count, the number
// of values (one digit), and X-Seen, the value when there is one.
func setHeadersGuest(kind int, name, value string) string {
	body := fmt.Sprintf(`
    (local $r i64)
    (call $set (i32.const %[1]d) (i32.const 0) (i32.const %[2]d) (i32.const 256) (i32.const %[3]d))
    (call $set (i32.const %[1]d) (i32.const 512) (i32.const 7) (i32.const 528) (i32.const 1))
    (local.set $r (call $values (i32.const %[1]d) (i32.const 0) (i32.const %[2]d) (i32.const 4096) (i32.const 4096)))
    (i32.store8 (i32.const 560) (i32.add (i32.const 48) (i32.wrap_i64 (i64.shr_u (local.get $r) (i64.const 32)))))
    (call $set (i32.const %[1]d) (i32.const 544) (i32.const 12) (i32.const 560) (i32.const 1))
    (if (i64.eq (i64.shr_u (local.get $r) (i64.const 32)) (i64.const 1))
      (then (call $set (i32.const %[1]d) (i32.const 576) (i32.const 6) (i32.const 4096)
                  (i32.sub (i32.wrap_i64 (local.get $r)) (i32.const 1)))))`, kind, len(name), len(value))
	handlers := `
  (func (export "handle_request") (result i64)` + body + `
    (i64.const 1))`
	if kind == 1 {
		handlers = `
  (func (export "handle_request") (result i64)
    (drop (call $features (i32.const 2)))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32)` + body + `)`
	}
	return fmt.Sprintf(`(module
  (import "http_handler" "enable_features" (func $features (param i32) (result i32)))
  (import "http_handler" "set_header_value" (func $set (param i32 i32 i32 i32 i32)))
  (import "http_handler" "get_header_values" (func $values (param i32 i32 i32 i32 i32) (result i64)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) %q)
  (data (i32.const 256) %q)
  (data (i32.const 512) "X-Multi")
  (data (i32.const 528) "3")
  (data (i32.const 544) "X-Seen-Count")
  (data (i32.const 576) "X-Seen")%s)`, name, value, handlers)
}

// headerValues returns every value of name in all, in order.
func headerValues(all iter.Seq2[[]byte, []byte], name string) []string {
	var vs []string
	for k, v := range all {
		if strings.EqualFold(string(k), name) {
			vs = append(vs, string(v))
		}
	}
	return vs
}

// TestSetHeaderReplacesEveryValue: set_header_value replaces every value of the name, as the
// http-wasm ABI says, on the request and on the response, through the real gateway: a
// filter's Cookie is the only one the upstream gets (fasthttp's Set would merge it into the
// client's cookies), its Set-Cookie the only one the client gets (fasthttp's would add it
// beside the upstream's), and a header sent twice keeps no second value. What the guest reads
// back is what is forwarded.
func TestSetHeaderReplacesEveryValue(t *testing.T) {
	var mu sync.Mutex
	var got *fasthttp.Request
	up := startUpstreamHandler(t, func(c *fasthttp.RequestCtx) {
		mu.Lock()
		got = &fasthttp.Request{}
		c.Request.CopyTo(got)
		mu.Unlock()
		c.Response.Header.Add("Set-Cookie", "session=SECRET; HttpOnly")
		c.Response.Header.Add("Set-Cookie", "theme=dark")
		c.Response.Header.Add("X-Multi", "1")
		c.Response.Header.Add("X-Multi", "2")
		c.SetBodyString("ok")
	})
	dir := openPolicyDir(t)
	cfg := fmt.Sprintf(`
[policies]
dir = "policies"
[[filter]]
name = "request"
module = %q
[[filter]]
name = "response"
module = %q
[[route]]
name = "open"
path = "/hook"
upstream = "http://%s"
policy = "routes.open"
filters = ["request", "response"]
`, watFilter(t, setHeadersGuest(0, "Cookie", "a=1")), watFilter(t, setHeadersGuest(1, "Set-Cookie", "sanitized=1")), up)
	_, addr := startServer(t, filepath.Join(dir, "gateway.toml"), cfg, nil)

	client := &fasthttp.HostClient{Addr: addr}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI("http://gateway/hook")
	req.Header.SetMethod("POST")
	req.Header.Add("Cookie", "session=SECRET")
	req.Header.Add("Cookie", "theme=dark")
	req.Header.Add("X-Multi", "1")
	req.Header.Add("X-Multi", "2")
	req.SetBodyString("{}")
	if err := client.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode() != 200 {
		t.Fatalf("status %d, body %q", resp.StatusCode(), resp.Body())
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range []struct {
		msg        string
		all        iter.Seq2[[]byte, []byte]
		name, want string
	}{
		{"forwarded request", got.Header.All(), "Cookie", "a=1"},
		{"answer", resp.Header.All(), "Set-Cookie", "sanitized=1"},
	} {
		if vs := headerValues(c.all, c.name); !slices.Equal(vs, []string{c.want}) {
			t.Errorf("%s: %s %q, want only %q", c.msg, c.name, vs, c.want)
		}
		if vs := headerValues(c.all, "X-Multi"); !slices.Equal(vs, []string{"3"}) {
			t.Errorf("%s: X-Multi %q, want only \"3\"", c.msg, vs)
		}
		count, seen := headerValues(c.all, "X-Seen-Count"), headerValues(c.all, "X-Seen")
		if !slices.Equal(count, []string{"1"}) || !slices.Equal(seen, []string{c.want}) {
			t.Errorf("%s: the guest read %q values of %s, the first %q; want 1, %q as forwarded", c.msg, count, c.name, seen, c.want)
		}
	}
}

// TestSkipKeepsEarlierFiltersResponse: a filter with on_error = "skip" that fails leaves the
// response as it was before it: what an earlier filter set stays in the answer (the client
// still gets its Strict-Transport-Security), and what the failing filter set before it
// trapped does not reach it, whether or not an earlier filter had changed the response.
func TestSkipKeepsEarlierFiltersResponse(t *testing.T) {
	up := startUpstream(t)
	sts := watFilter(t, `(module
  (import "http_handler" "set_header_value" (func $set (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "Strict-Transport-Security")
  (data (i32.const 32) "max-age=63072000")
  (func (export "handle_request") (result i64)
    (call $set (i32.const 1) (i32.const 0) (i32.const 25) (i32.const 32) (i32.const 16))
    (i64.const 1)))`)
	trap := watFilter(t, `(module
  (import "http_handler" "set_header_value" (func $set (param i32 i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "X-Half-Done")
  (data (i32.const 16) "1")
  (func (export "handle_request") (result i64)
    (call $set (i32.const 1) (i32.const 0) (i32.const 11) (i32.const 16) (i32.const 1))
    unreachable))`)
	dir := openPolicyDir(t)
	_, addr := startServer(t, filepath.Join(dir, "gateway.toml"), fmt.Sprintf(`
[policies]
dir = "policies"
[[filter]]
name = "hsts"
module = %q
[[filter]]
name = "broken"
module = %q
on_error = "skip"
[[route]]
name = "both"
path = "/both"
upstream = "http://%[3]s"
policy = "routes.open"
filters = ["hsts", "broken"]
[[route]]
name = "alone"
path = "/alone"
upstream = "http://%[3]s"
policy = "routes.open"
filters = ["broken"]
`, sts, trap, up), nil)

	client := &fasthttp.HostClient{Addr: addr}
	for _, c := range []struct{ path, hsts string }{{"/both", "max-age=63072000"}, {"/alone", ""}} {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		req.SetRequestURI("http://gateway" + c.path)
		req.Header.SetMethod("POST")
		req.SetBodyString("{}")
		if err := client.Do(req, resp); err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode() != 200 || string(resp.Body()) != "ok" {
			t.Errorf("%s: status %d, body %q, want the upstream's 200 ok", c.path, resp.StatusCode(), resp.Body())
		}
		if got := string(resp.Header.Peek("Strict-Transport-Security")); got != c.hsts {
			t.Errorf("%s: Strict-Transport-Security %q, want %q", c.path, got, c.hsts)
		}
		if got := resp.Header.Peek("X-Half-Done"); got != nil {
			t.Errorf("%s: the failed filter's X-Half-Done %q reached the client", c.path, got)
		}
		fasthttp.ReleaseRequest(req)
		fasthttp.ReleaseResponse(resp)
	}
}
