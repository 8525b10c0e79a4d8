package input

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/urlpath"
)

// The seed corpora are in testdata/fuzz/<target>.

func fuzzMeta() *Meta {
	return &Meta{
		ID: "0123456789abcdef0123456789abcdef", Scheme: "http", RemoteIP: "127.0.0.1",
		ReceivedAt: time.Unix(1_700_000_000, 0), RouteName: "r", RoutePath: "/hooks/", ParseJSON: true,
	}
}

// FuzzRequest parses arbitrary bytes as an HTTP/1.1 request, as the listener would, and builds
// input.request from whatever parsed: no panic, the body is the request's body byte for byte
// and stays so when fasthttp reuses its buffers, and the headers are the request's, lower-cased
// and joined.
func FuzzRequest(f *testing.F) {
	f.Add([]byte("POST /hooks/a?x=1&x=2 HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"))
	// Names shared with commonHeaders, repeated in other cases, beside names that are not.
	f.Add([]byte("POST / HTTP/1.1\r\nHost: gw\r\nX-Hub-Signature-256: a\r\nX-Custom: 1\r\nx-hub-signature-256: b\r\nX-CUSTOM: 2\r\nContent-Length: 0\r\n\r\n"))
	// What the wire-level review found: trailers (kept apart from the headers), one name
	// repeated many times, many names (past the header index's first growth), JSON bombs.
	f.Add([]byte("POST / HTTP/1.1\r\nHost: gw\r\nX-Tenant: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Tenant: b\r\nX-Internal-User: admin\r\n\r\n"))
	f.Add([]byte("POST / HTTP/1.1\r\nHost: gw\r\n" + strings.Repeat("X-Same: v\r\nx-same: w\r\n", 40) + "Content-Length: 0\r\n\r\n"))
	var names strings.Builder
	for i := range 40 {
		names.WriteString("X-N" + strconv.Itoa(i) + ": " + strconv.Itoa(i) + "\r\n")
	}
	f.Add([]byte("POST / HTTP/1.1\r\nHost: gw\r\n" + names.String() + "Content-Length: 0\r\n\r\n"))
	for _, bomb := range []string{strings.Repeat("[", 100) + strings.Repeat("]", 100), "[" + strings.Repeat("{},", 300) + "{}]", `{"a":1,"a":{"b":"\ud800"}}`} {
		f.Add([]byte("POST / HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(bomb)) + "\r\n\r\n" + bomb))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req fasthttp.Request
		if err := req.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
			return
		}
		m := fuzzMeta()
		obj := Request(&req, m)
		var cb Builder
		c := cb.Capture(&req, m)
		checkCaptured(t, c, obj) // before c built an object: the flat answers
		body := append([]byte(nil), req.Body()...)
		if got := str(t, obj, "body"); got != string(body) {
			t.Fatalf("input.request.body %q, request body %q", got, body)
		}
		if got := str(t, obj, "method"); got != string(req.Header.Method()) {
			t.Fatalf("method %q, want %q", got, req.Header.Method())
		}
		// Without Meta.Path, the path is the request's made canonical (raw when it has no
		// canonical form); uri stays the request-target as received.
		wantPath := req.URI().PathOriginal()
		if r := urlpath.Clean(nil, wantPath); r.Class != urlpath.Invalid {
			wantPath = r.Path
		}
		if got := str(t, obj, "path"); got != string(wantPath) {
			t.Fatalf("path %q, want %q", got, wantPath)
		}
		if got := str(t, obj, "uri"); got != string(req.Header.RequestURI()) {
			t.Fatalf("uri %q, want %q", got, req.Header.RequestURI())
		}
		checkHeaders(t, obj, &req.Header)
		checkQuery(t, obj, &req)
		j := obj.Get(ast.StringTerm("json"))
		if j != nil {
			if _, err := ast.JSON(j.Value); err != nil {
				t.Fatalf("input.request.json is not JSON-representable: %v", err)
			}
		}
		// input.request.json is what encoding/json makes of the body, whatever its
		// Content-Type, unless the body is over a limit or sent with a Content-Encoding (then
		// it is absent, and the gateway refuses the request).
		want, isJSON := referenceJSON(string(body))
		var je *JSONError
		switch err := c.ParseJSON(); {
		case errors.As(err, &je):
			if j != nil {
				t.Fatalf("input.request.json present although the parse was refused: %v", err)
			}
		case err != nil:
			t.Fatalf("ParseJSON: %v is not a JSONError", err)
		case isJSON != (j != nil):
			t.Fatalf("input.request.json present %v, encoding/json reads the body: %v", j != nil, isJSON)
		case isJSON && j.Value.Compare(want) != 0:
			t.Fatalf("input.request.json = %v, encoding/json: %v", j, want)
		}
		doc := Document(obj, m, nil)
		if doc.Get(ast.StringTerm("request")) == nil || doc.Get(ast.StringTerm("route")) == nil {
			t.Fatal("document without request or route")
		}

		// The value owns its bytes: fasthttp reuses the request's buffers after the handler.
		b := req.Body()
		for i := range b {
			b[i] ^= 0xff
		}
		req.Header.SetMethod("SCRIBBLED")
		if got := str(t, obj, "body"); got != string(body) {
			t.Fatalf("input.request.body changed with the request's buffer: %q, want %q", got, body)
		}
		// The capture too: filters run after it, and may change the request.
		if c.Object().Compare(obj) != 0 {
			t.Fatalf("the capture's object changed with the request: %v, want %v", c.Object(), obj)
		}
		checkCaptured(t, c, obj)
	})
}

// checkCaptured holds c's answers to obj, the input.request built for the same request:
// every field, every header, and nothing where obj holds nothing.
func checkCaptured(t *testing.T, c *Captured, obj ast.Object) {
	t.Helper()
	for _, k := range []string{"id", "method", "scheme", "host", "path", "uri", "query", "headers", "body", "json", "remote_ip", "received_at", "tls", "nope", ""} {
		want := obj.Get(ast.StringTerm(k))
		got := c.Field(k)
		if (got == nil) != (want == nil) || got != nil && !got.Equal(want) {
			t.Fatalf("Field(%q) = %v, input.request has %v", k, got, want)
		}
		if want == nil {
			continue
		}
		if s, ok := want.Value.(ast.String); ok && k != "json" && c.Text(k) != string(s) {
			t.Fatalf("Text(%q) = %q, input.request has %q", k, c.Text(k), s)
		}
	}
	headers := obj.Get(ast.StringTerm("headers")).Value.(ast.Object)
	for _, k := range append(headers.Keys(), ast.StringTerm("x-not-sent"), ast.StringTerm("")) {
		name := string(k.Value.(ast.String))
		want, got := headers.Get(k), c.Header(name)
		if (got == nil) != (want == nil) || got != nil && !got.Equal(want) {
			t.Fatalf("Header(%q) = %v, input.request.headers has %v", name, got, want)
		}
		if want != nil && c.Get(name) != string(want.Value.(ast.String)) {
			t.Fatalf("Get(%q) = %q, input.request.headers has %v", name, c.Get(name), want)
		}
	}
}

// FuzzRequestBody frames an arbitrary body (Content-Length or chunked, cut into chunks at
// arbitrary points) and checks input.request.body is exactly the bytes sent.
func FuzzRequestBody(f *testing.F) {
	f.Add([]byte(`{"zen":"Design for failure."}`), "application/json", false, uint8(0))
	f.Add([]byte{0x00, 0xff, 0x0d, 0x0a, 0x0d, 0x0a, 0x30, 0x0d, 0x0a}, "application/octet-stream", true, uint8(3))
	f.Add([]byte{}, "", true, uint8(1))
	// JSON bombs, chunked: the parse refuses them (413/422) whatever the framing.
	f.Add([]byte(strings.Repeat("[", 200)+strings.Repeat("]", 200)), "application/json", true, uint8(9))
	f.Add([]byte("["+strings.Repeat(`{"":0},`, 500)+"0]"), "", false, uint8(0))
	f.Fuzz(func(t *testing.T, body []byte, contentType string, chunked bool, cut uint8) {
		for _, c := range []byte(contentType) {
			if c < 0x20 || c > 0x7e {
				contentType = "" // a header value must be visible ASCII here: the body is under test
				break
			}
		}
		var raw bytes.Buffer
		raw.WriteString("POST /hooks/x HTTP/1.1\r\nHost: gw\r\n")
		if contentType != "" {
			raw.WriteString("Content-Type: " + contentType + "\r\n")
		}
		if chunked {
			raw.WriteString("Transfer-Encoding: chunked\r\n\r\n")
			step := int(cut) + 1
			for i := 0; i < len(body); i += step {
				end := min(i+step, len(body))
				raw.WriteString(strconv.FormatInt(int64(end-i), 16) + "\r\n")
				raw.Write(body[i:end])
				raw.WriteString("\r\n")
			}
			raw.WriteString("0\r\n\r\n")
		} else {
			raw.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
			raw.Write(body)
		}
		var req fasthttp.Request
		// The reader holds the whole request: the header block is not under test here, and
		// a long Content-Type would otherwise outgrow bufio's 4 KiB default and be refused
		// for its size, which the server's own header limit decides (and its tests check).
		if err := req.Read(bufio.NewReaderSize(&raw, max(4096, raw.Len()))); err != nil {
			t.Fatalf("well-formed request refused: %v\n%q", err, raw.Bytes())
		}
		obj := Request(&req, fuzzMeta())
		if got := str(t, obj, "body"); got != string(body) {
			t.Fatalf("input.request.body %x, sent %x", got, body)
		}
		var b Builder
		var je *JSONError
		if err := b.Capture(&req, fuzzMeta()).ParseJSON(); err != nil && !errors.As(err, &je) {
			t.Fatalf("ParseJSON: %v is not a JSONError", err)
		}
	})
}

// FuzzClientIP checks the X-Forwarded-For walk: the answer is always an address, and it is
// the peer itself unless the peer is a trusted proxy, in which case it is an address the
// header carries.
func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.7", "203.0.113.9, 10.0.0.3", true)
	f.Add("198.51.100.1", "1.2.3.4", true)
	f.Add("10.0.0.7", "::ffff:10.0.0.2, garbage, 2001:db8::1", true)
	f.Add("10.0.0.7", "", false)
	f.Add("10.0.0.7", "203.0.113.9:443, [2001:db8::1]:80, fe80::1%eth0", true)
	f.Fuzz(func(t *testing.T, peer, xff string, trust bool) {
		pa, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		pa = pa.WithZone("") // a TCP peer address carries no zone
		addr := &net.TCPAddr{IP: pa.AsSlice(), Port: 1234}
		var trusted []netip.Prefix
		if trust {
			trusted = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::ffff:10.0.0.0/104")}
		}
		got := ClientIP(addr, []byte(xff), trusted)
		// The server hands in the peer as net.IP formats it; the answer must not change.
		if or := ClientIPOr(addr, addr.IP.String(), []byte(xff), trusted); or != got {
			t.Fatalf("ClientIPOr(%s, %q) = %q, ClientIP = %q", peer, xff, or, got)
		}
		ip, err := netip.ParseAddr(got)
		if err != nil {
			t.Fatalf("ClientIP(%s, %q) = %q, not an address", peer, xff, got)
		}
		if ip == pa.Unmap() {
			return
		}
		if !trust || !inAny(pa.Unmap(), trusted) {
			t.Fatalf("untrusted peer %s: ClientIP took %q from X-Forwarded-For %q", peer, got, xff)
		}
		found := false
		for _, p := range strings.Split(xff, ",") {
			p = strings.TrimSpace(p)
			a, err := netip.ParseAddr(p)
			if ap, perr := netip.ParseAddrPort(p); err != nil && perr == nil {
				a, err = ap.Addr(), nil
			}
			if err == nil && a.Zone() == "" && a.Unmap() == ip {
				found = true
			}
		}
		if !found {
			t.Fatalf("ClientIP = %q is neither the peer %s nor in %q", got, peer, xff)
		}
	})
}

// TestClientIPForwardedEntries: behind a trusted proxy, an X-Forwarded-For entry written
// with a port (as some load balancers append it) names its address; one with a zone names
// no client and ends the walk, as any unreadable entry does.
func TestClientIPForwardedEntries(t *testing.T) {
	peer := &net.TCPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 1234}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for xff, want := range map[string]string{
		"203.0.113.9":                   "203.0.113.9",
		"203.0.113.9:443":               "203.0.113.9",
		"198.51.100.1, 203.0.113.9:443": "203.0.113.9",
		"[2001:db8::1]:8443":            "2001:db8::1",
		"203.0.113.9, 10.0.0.3:80":      "203.0.113.9",
		"fe80::1%eth0":                  "10.0.0.7",
		"203.0.113.9, fe80::1%eth0":     "10.0.0.7",
		"[fe80::1%eth0]:80, 10.0.0.3":   "10.0.0.3",
		"unknown":                       "10.0.0.7",
	} {
		if got := ClientIP(peer, []byte(xff), trusted); got != want {
			t.Errorf("X-Forwarded-For %q: client %q, want %q", xff, got, want)
		}
	}
}

func str(t *testing.T, obj ast.Object, key string) string {
	t.Helper()
	v := obj.Get(ast.StringTerm(key))
	if v == nil {
		t.Fatalf("input.request.%s missing", key)
	}
	s, ok := v.Value.(ast.String)
	if !ok {
		t.Fatalf("input.request.%s is %T, not a string", key, v.Value)
	}
	return string(s)
}

func checkHeaders(t *testing.T, obj ast.Object, h *fasthttp.RequestHeader) {
	t.Helper()
	want := map[string]string{}
	for k, v := range h.All() {
		name := asciiLower(string(k))
		if prev, ok := want[name]; ok {
			want[name] = prev + ", " + string(v)
			continue
		}
		want[name] = string(v)
	}
	got, ok := obj.Get(ast.StringTerm("headers")).Value.(ast.Object)
	if !ok {
		t.Fatal("input.request.headers is not an object")
	}
	if got.Len() != len(want) {
		t.Fatalf("headers: %d names, want %d (%v)", got.Len(), len(want), want)
	}
	for name, v := range want {
		term := got.Get(ast.StringTerm(name))
		if term == nil {
			t.Fatalf("header %q missing from input.request.headers", name)
		}
		if s, _ := term.Value.(ast.String); string(s) != v {
			t.Fatalf("header %q = %q, want %q", name, s, v)
		}
	}
}

func checkQuery(t *testing.T, obj ast.Object, req *fasthttp.Request) {
	t.Helper()
	want := map[string][]string{}
	for k, v := range req.URI().QueryArgs().All() {
		want[string(k)] = append(want[string(k)], string(v))
	}
	got, ok := obj.Get(ast.StringTerm("query")).Value.(ast.Object)
	if !ok {
		t.Fatal("input.request.query is not an object")
	}
	if got.Len() != len(want) {
		t.Fatalf("query: %d names, want %d", got.Len(), len(want))
	}
	for k, vs := range want {
		term := got.Get(ast.StringTerm(k))
		if term == nil {
			t.Fatalf("query %q missing", k)
		}
		arr, ok := term.Value.(*ast.Array)
		if !ok || arr.Len() != len(vs) {
			t.Fatalf("query %q = %v, want %q", k, term, vs)
		}
		for i, v := range vs {
			if s, _ := arr.Elem(i).Value.(ast.String); string(s) != v {
				t.Fatalf("query %q[%d] = %q, want %q", k, i, s, v)
			}
		}
	}
}

// asciiLower lower-cases A-Z only: header names are ASCII tokens, and the gateway must not
// fold other bytes (strings.ToLower would turn "İ" into "i̇").
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
