package filter

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// The prebuilt guests of github.com/http-wasm/http-wasm-host-go v0.7.0,
// read from the module cache, each through the fasthttp gateway, checked
// against what its .wat source (next to it in the module cache) says.

func get(t *testing.T, url string, header http.Header, method, body string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestReferenceExampleAuth(t *testing.T) {
	up := startUpstream(t)
	up.set(200, `{"hello": "world"}`, false)
	f := load(t, newHost(t), Spec{Name: "auth", Module: refGuest(t, "examples/auth.wasm"), Pool: 1})
	g := startGateway(t, f, up.addr)

	cases := []struct {
		name         string
		header       http.Header
		want         int
		authenticate string
	}{
		{"no authorization", http.Header{"Notauthorization": {"1"}}, 401, `Basic realm="test"`},
		{"empty authorization", http.Header{"Authorization": {""}}, 401, ""},
		{"valid credentials", http.Header{"Authorization": {"Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="}}, 200, ""},
		{"wrong credentials", http.Header{"Authorization": {"0"}}, 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(t, g.url, c.header, "GET", "")
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			if got := resp.Header.Get("Www-Authenticate"); got != c.authenticate {
				t.Errorf("WWW-Authenticate %q, want %q", got, c.authenticate)
			}
			if c.want == 200 && body != `{"hello": "world"}` {
				t.Errorf("body %q did not come from upstream", body)
			}
			if c.want == 401 && up.lastRequest() != nil {
				t.Errorf("denied request reached the upstream")
			}
			up.set(200, `{"hello": "world"}`, false)
		})
	}
}

func TestReferenceExampleConfig(t *testing.T) {
	up := startUpstream(t)
	up.set(200, "response", false)
	h := newHost(t)
	cases := []struct {
		features uint64
		loads    bool
	}{
		{0, true},
		{uint64(featureBufferRequest), true},
		{uint64(featureBufferResponse), true},
		{uint64(featureBufferRequest | featureBufferResponse), true},
		{uint64(featureBufferRequest | featureBufferResponse | featureTrailers), true},
		// The guest requires trailers alone; this host has none, so the
		// guest's start function traps, as the ABI intends.
		{uint64(featureTrailers), false},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("features=%d", c.features), func(t *testing.T) {
			cfg := binary.LittleEndian.AppendUint64(nil, c.features)
			f, err := h.Load(testCtx, Spec{Name: "config", Module: refGuest(t, "examples/config.wasm"), Config: cfg, Pool: 1})
			if !c.loads {
				var fe *Error
				if !errors.As(err, &fe) || fe.Kind != KindTrap {
					t.Fatalf("load error %v, want a trap from the start function", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close(testCtx)
			g := startGateway(t, f, up.addr)
			resp, body := get(t, g.url, nil, "POST", `{"hello": "panda"}`)
			if resp.StatusCode != 200 || body != "response" {
				t.Fatalf("got %d %q", resp.StatusCode, body)
			}
			if got := string(up.lastRequest().Body()); got != `{"hello": "panda"}` {
				t.Errorf("upstream got body %q", got)
			}
		})
	}
}

func TestReferenceExampleLog(t *testing.T) {
	logger, logs := newLogger(slog.LevelInfo) // the guest traps if debug is enabled
	f := load(t, newHost(t), Spec{Name: "log", Module: refGuest(t, "examples/log.wasm"), Pool: 1, Logger: logger})
	g := startGateway(t, f, "")
	resp, _ := get(t, g.url, nil, "GET", "")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %v", resp.StatusCode, g.errors())
	}
	if !strings.Contains(logs.String(), "level=INFO msg=\"hello world\" filter=log source=guest") {
		t.Errorf("guest log line missing, got:\n%s", logs)
	}

	// With debug enabled the guest traps by design: log_enabled must say so.
	logger, _ = newLogger(slog.LevelDebug)
	f = load(t, newHost(t), Spec{Name: "log", Module: refGuest(t, "examples/log.wasm"), Pool: 1, Logger: logger})
	g = startGateway(t, f, "")
	if resp, _ := get(t, g.url, nil, "GET", ""); resp.StatusCode != 500 {
		t.Errorf("status %d with debug enabled, want 500", resp.StatusCode)
	}
}

func TestReferenceExampleRedact(t *testing.T) {
	up := startUpstream(t)
	secret := "open sesame"
	f := load(t, newHost(t), Spec{Name: "redact", Module: refGuest(t, "examples/redact.wasm"), Config: []byte(secret), Pool: 1})
	g := startGateway(t, f, up.addr)
	cases := []struct{ body, want string }{
		{secret, "###########"},
		{"hello world", "hello world"},
		{"hello " + secret + " world", "hello ########### world"},
	}
	for _, c := range cases {
		up.set(200, c.body, false)
		resp, body := get(t, g.url, nil, "POST", c.body)
		if resp.StatusCode != 200 {
			t.Fatalf("status %d: %v", resp.StatusCode, g.errors())
		}
		if got := string(up.lastRequest().Body()); got != c.want {
			t.Errorf("upstream got %q, want %q", got, c.want)
		}
		if body != c.want {
			t.Errorf("client got %q, want %q", body, c.want)
		}
	}
	// A redact guest without a secret traps at start: Load fails.
	if _, err := newHost(t).Load(testCtx, Spec{Name: "redact", Module: refGuest(t, "examples/redact.wasm")}); err == nil {
		t.Error("redact without config loaded")
	}
}

func TestReferenceExampleRouter(t *testing.T) {
	up := startUpstream(t)
	up.set(200, "", true)
	f := load(t, newHost(t), Spec{Name: "router", Module: refGuest(t, "examples/router.wasm"), Pool: 1})
	g := startGateway(t, f, up.addr)
	for path, want := range map[string]string{"/": "hello world", "/nothosst": "hello world", "/host/a": "/a"} {
		resp, body := get(t, g.url+path, nil, "GET", "")
		if resp.StatusCode != 200 || body != want {
			t.Errorf("%s: got %d %q, want 200 %q", path, resp.StatusCode, body, want)
		}
		if want == "hello world" && resp.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("%s: content-type %q", path, resp.Header.Get("Content-Type"))
		}
	}
}

func TestReferenceExampleWASI(t *testing.T) {
	up := startUpstream(t)
	up.set(200, `{"hello": "world"}`, false)
	logger, logs := newLogger(slog.LevelDebug)
	f := load(t, newHost(t), Spec{Name: "wasi", Module: refGuest(t, "examples/wasi.wasm"), Pool: 1, Logger: logger})
	g := startGateway(t, f, up.addr)
	resp, body := get(t, g.url, http.Header{"Content-Type": {"application/json"}}, "POST", `{"hello": "panda"}`)
	if resp.StatusCode != 200 || body != `{"hello": "world"}` {
		t.Fatalf("got %d %q: %v", resp.StatusCode, body, g.errors())
	}
	out := logs.String()
	for _, want := range []string{
		`guest stdout`,
		`POST / HTTP/1.1\nhost: 127.0.0.1:`,
		`\ncontent-length: 18\ncontent-type: application/json\n`,
		`\n\n{\"hello\": \"panda\"}\n`,
		`HTTP/1.1 200\ncontent-type: text/plain; charset=utf-8`,
		`\n\n{\"hello\": \"world\"}\n`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout log lacks %q; log:\n%s", want, out)
		}
	}
}

func TestReferenceE2E(t *testing.T) {
	up := startUpstream(t)
	h := newHost(t)
	guest := func(name string) *gateway {
		f := load(t, h, Spec{Name: name, Module: refGuest(t, "internal/test/testdata/e2e/"+name+".wasm"), Pool: 1})
		return startGateway(t, f, up.addr)
	}

	t.Run("protocol_version", func(t *testing.T) {
		up.set(200, "", false)
		resp, body := get(t, guest("protocol_version").url, nil, "GET", "")
		if resp.StatusCode != 200 || body != "HTTP/1.1" {
			t.Errorf("got %d %q", resp.StatusCode, body)
		}
		if up.lastRequest() != nil {
			t.Error("guest returned next=0 but the request was forwarded")
		}
	})
	t.Run("method", func(t *testing.T) {
		up.set(200, "", false)
		resp, _ := get(t, guest("method").url, nil, "GET", "")
		r := up.lastRequest()
		if resp.StatusCode != 200 || r == nil {
			t.Fatalf("status %d, forwarded %v", resp.StatusCode, r != nil)
		}
		if string(r.Header.Method()) != "POST" || string(r.Body()) != "GET" {
			t.Errorf("upstream got %s with body %q, want POST with body GET", r.Header.Method(), r.Body())
		}
	})
	t.Run("uri", func(t *testing.T) {
		up.set(200, "ok", false)
		resp, body := get(t, guest("uri").url+"/v1.0/hi?name=panda", nil, "GET", "")
		r := up.lastRequest()
		if resp.StatusCode != 200 || body != "ok" || r == nil {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
		if string(r.RequestURI()) != "/v1.0/hello?name=teddy" || string(r.Body()) != "/v1.0/hi?name=panda" {
			t.Errorf("upstream got %s with body %q", r.RequestURI(), r.Body())
		}
	})
	t.Run("header_names", func(t *testing.T) {
		up.set(200, "", false)
		resp, _ := get(t, guest("header_names").url, http.Header{"A": {"1"}, "B": {"2", "3"}}, "GET", "")
		if resp.StatusCode != 200 || up.lastRequest() == nil {
			t.Errorf("status %d, forwarded %v", resp.StatusCode, up.lastRequest() != nil)
		}
	})
	t.Run("header_value", func(t *testing.T) {
		up.set(200, "", false)
		resp, _ := get(t, guest("header_value").url, nil, "GET", "")
		r := up.lastRequest()
		if resp.StatusCode != 200 || r == nil || string(r.Header.ContentType()) != "text/plain" {
			t.Errorf("status %d, upstream content-type %q", resp.StatusCode, r.Header.ContentType())
		}
	})
	t.Run("handle_response", func(t *testing.T) {
		up.set(200, "", false)
		g := guest("handle_response")
		for range 3 { // reqCtx must be propagated on every request
			if resp, _ := get(t, g.url, nil, "GET", ""); resp.StatusCode != 200 {
				t.Fatalf("status %d: %v", resp.StatusCode, g.errors())
			}
		}
	})
}

func TestReferenceErrorGuests(t *testing.T) {
	up := startUpstream(t)
	up.set(200, "upstream", false)
	h := newHost(t)
	cases := []struct {
		name   string
		kind   ErrorKind
		stdout bool
	}{
		{"panic_on_handle_request", KindTrap, true},
		{"panic_on_handle_response", KindTrap, true},
		{"set_request_header_after_next", KindABI, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logger, logs := newLogger(slog.LevelDebug)
			f := load(t, h, Spec{Name: c.name, Module: refGuest(t, "internal/test/testdata/error/"+c.name+".wasm"), Pool: 1, Logger: logger})
			g := startGateway(t, f, up.addr)
			resp, body := get(t, g.url, nil, "GET", "")
			if resp.StatusCode != 500 || body != "filter error" {
				t.Fatalf("got %d %q, want 500", resp.StatusCode, body)
			}
			errs := g.errors()
			var fe *Error
			if len(errs) != 1 || !errors.As(errs[0], &fe) || fe.Kind != c.kind {
				t.Fatalf("errors %v, want one of kind %s", errs, c.kind)
			}
			if c.stdout && !strings.Contains(logs.String(), `output=panic!`) {
				t.Errorf("guest stdout not logged:\n%s", logs)
			}
			// The failed instance was discarded; a fresh one fails the same
			// way, proving the host survived.
			if resp, _ := get(t, g.url, nil, "GET", ""); resp.StatusCode != 500 {
				t.Errorf("second request status %d", resp.StatusCode)
			}
			if st := f.Stats(); st.Discarded != 2 {
				t.Errorf("discarded %d instances, want 2", st.Discarded)
			}
		})
	}
	t.Run("panic_on_start", func(t *testing.T) {
		_, err := h.Load(testCtx, Spec{Name: "start", Module: refGuest(t, "internal/test/testdata/error/panic_on_start.wasm")})
		var fe *Error
		if !errors.As(err, &fe) || fe.Kind != KindTrap {
			t.Fatalf("load error %v, want a trap", err)
		}
	})
}

func TestReferenceBenchGuests(t *testing.T) {
	h := newHost(t)
	cases := []struct {
		name    string
		method  string
		body    string
		status  int
		check   func(resp *http.Response, body string) error
		forward bool
	}{
		{name: "add_header_value", status: 200, check: header("Set-Cookie", "a=b")},
		{name: "get_header_names", status: 200},
		{name: "get_header_values", status: 200},
		{name: "get_uri", status: 200},
		{name: "log", status: 200},
		{name: "read_body", method: "POST", body: "hello", status: 200},
		{name: "read_body_stream", method: "POST", body: strings.Repeat("x", 5000), status: 200},
		{name: "remove_header", status: 200},
		{name: "set_header_value", status: 200, check: header("Content-Type", "text/plain")},
		{name: "set_status_code", status: 404},
		{name: "set_uri", status: 200},
		{name: "write_body", status: 200, check: func(_ *http.Response, body string) error {
			if body != strings.Repeat("\x00", 11) { // the guest writes from offset 0, not its data at 16
				return fmt.Errorf("body %q", body)
			}
			return nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := load(t, h, Spec{Name: c.name, Module: refGuest(t, "internal/test/testdata/bench/"+c.name+".wasm"), Pool: 1})
			g := startGateway(t, f, "")
			method := c.method
			if method == "" {
				method = "GET"
			}
			resp, body := get(t, g.url, http.Header{"Accept": {"*/*"}}, method, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, c.status, g.errors())
			}
			if c.check != nil {
				if err := c.check(resp, body); err != nil {
					t.Error(err)
				}
			}
		})
	}
	// read_body traps on an empty body, as its source says.
	f := load(t, h, Spec{Name: "read_body_empty", Module: refGuest(t, "internal/test/testdata/bench/read_body.wasm"), Pool: 1})
	g := startGateway(t, f, "")
	if resp, _ := get(t, g.url, nil, "GET", ""); resp.StatusCode != 500 {
		t.Errorf("read_body with no body: status %d, want 500", resp.StatusCode)
	}
}

func header(name, want string) func(*http.Response, string) error {
	return func(resp *http.Response, _ string) error {
		if got := resp.Header.Get(name); got != want {
			return fmt.Errorf("%s %q, want %q", name, got, want)
		}
		return nil
	}
}
