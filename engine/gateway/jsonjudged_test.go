package gateway

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestJSONIsJudgedWhateverItsContentType: a policy's rule on input.request.json holds for
// every body an upstream could read as that JSON: one whose Content-Type is spelled in
// capitals or names another type is parsed all the same, and one sent with a
// Content-Encoding (on any of its lines), which the gateway would judge as compressed bytes
// while an upstream inflates it, is refused with 415 on a route whose policy reads the JSON, and so is JSON after
// a byte order mark or in UTF-16, which some parsers read too. An object with a key twice,
// whose first value some parsers read and the policy would not judge, is refused with 422,
// and a number of more than 1,000 bytes, which OPA reads in time quadratic in its digits,
// with 413. A body that starts as an object or array but is not JSON, which lenient parsers
// read, is refused with 422, and so is a number OPA cannot hold. A
// route whose policy does not read it forwards such a body as it came.
func TestJSONIsJudgedWhateverItsContentType(t *testing.T) {
	up := startUpstream(t)
	cfg := quietHead + fmt.Sprintf(`
[[route]]
name = "amount"
path = "/hooks/amount"
upstream = %[1]q
policy = "routes.amount"

[[route]]
name = "open"
path = "/hooks/open"
upstream = %[1]q
policy = "routes.open"
`, up.URL())
	e := startEnv(t, cfg, map[string]string{
		"policies/amount.rego": "package routes.amount\n\nallow := true\n\ndeny contains \"amount too large\" if input.request.json.amount > 100\n",
		"policies/open.rego":   "package routes.open\n\nallow := true\n",
	}, Options{Logger: discardLogger()})
	var gz bytes.Buffer
	w := gzip.NewWriter(&gz)
	w.Write([]byte(`{"amount":5000}`))
	w.Close()
	post := func(path, ct, encoding string, body []byte) int {
		t.Helper()
		req, _ := http.NewRequest("POST", e.base+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		if encoding != "" {
			req.Header["Content-Encoding"] = strings.Split(encoding, "\n") // one line each
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	big := []byte(`{"amount":5000}`)
	utf16le := []byte{0xff, 0xfe} // the same JSON in UTF-16, as Python's json.loads reads it
	for _, r := range string(big) {
		utf16le = append(utf16le, byte(r), 0)
	}
	for _, c := range []struct {
		name, path, ct, encoding string
		body                     []byte
		want                     int
	}{
		{"declared JSON", "/hooks/amount", "application/json", "", big, 403},
		{"JSON in capitals", "/hooks/amount", "Application/JSON", "", big, 403},
		{"JSON declared as text", "/hooks/amount", "text/plain", "", big, 403},
		{"small amount", "/hooks/amount", "text/plain", "", []byte(`{"amount":5}`), 200},
		{"not JSON", "/hooks/amount", "application/json", "", []byte(`amount=5000`), 200},
		{"gzipped JSON", "/hooks/amount", "application/json", "gzip", gz.Bytes(), 415},
		{"identity coding", "/hooks/amount", "application/json", "identity", big, 403},
		// fasthttp's Peek reads the first line only: every line counts.
		{"gzipped, identity on the line before", "/hooks/amount", "application/json", "identity\ngzip", gz.Bytes(), 415},
		{"gzipped, an empty line before", "/hooks/amount", "application/json", "\ngzip", gz.Bytes(), 415},
		{"gzipped, a list", "/hooks/amount", "application/json", "identity, gzip", gz.Bytes(), 415},
		{"gzipped, the policy reads no JSON", "/hooks/open", "application/json", "gzip", gz.Bytes(), 200},
		{"JSON after a BOM", "/hooks/amount", "application/json", "", append([]byte("\xef\xbb\xbf"), big...), 415},
		{"JSON in UTF-16", "/hooks/amount", "application/json", "", utf16le, 415},
		{"JSON in UTF-16 without a BOM", "/hooks/amount", "application/json", "", utf16le[2:], 415},
		{"UTF-16, the policy reads no JSON", "/hooks/open", "application/json", "", utf16le, 200},
		{"a key twice", "/hooks/amount", "application/json", "", []byte(`{"amount":5000,"amount":5}`), 422},
		{"a key twice, once escaped", "/hooks/amount", "application/json", "", []byte(`{"amount":5000,"\u0061mount":5}`), 422},
		{"a key twice in a nested object", "/hooks/amount", "application/json", "", []byte(`{"amount":5,"x":{"k":1,"k":2}}`), 422},
		{"a key twice, the policy reads no JSON", "/hooks/open", "application/json", "", []byte(`{"amount":5000,"amount":5}`), 200},
		// OPA reads a number in time quadratic in its digits: a megabyte of them cost seconds
		// of CPU, before any filter or rule, and again in every comparison.
		{"a number of 64 KiB", "/hooks/amount", "application/json", "", []byte(`{"amount":1.` + strings.Repeat("5", 1<<16) + `e1}`), 413},
		// Not JSON, but lenient parsers (Python's json.loads, JSON5, Json.NET, a streaming
		// reader that stops after the first value) read an amount of 5000 or Infinity in each.
		{"Infinity", "/hooks/amount", "application/json", "", []byte(`{"amount":Infinity}`), 422},
		{"a trailing comma", "/hooks/amount", "application/json", "", []byte(`{"amount":5000,}`), 422},
		{"a comment", "/hooks/amount", "application/json", "", []byte(`{"amount":5000 /* c */}`), 422},
		{"single quotes", "/hooks/amount", "application/json", "", []byte(` {'amount':5000}`), 422},
		{"more after the value", "/hooks/amount", "application/json", "", []byte(`{"amount":5000} {}`), 422},
		{"an array with a trailing comma", "/hooks/amount", "application/json", "", []byte(`[{"amount":5000},]`), 422},
		// JSON, with an exponent OPA cannot hold: Node and Python read Infinity.
		{"a number out of range", "/hooks/amount", "application/json", "", []byte(`{"amount":1e99999999999}`), 422},
		{"a number out of range alone", "/hooks/amount", "application/json", "", []byte(`1e9999999999999999999`), 422},
		{"a number OPA holds", "/hooks/amount", "application/json", "", []byte(`{"amount":1e999}`), 403},
		{"not JSON, the policy reads no JSON", "/hooks/open", "application/json", "", []byte(`{"amount":Infinity}`), 200},
	} {
		if got := post(c.path, c.ct, c.encoding, c.body); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	var fwd []string
	for _, r := range up.requests() {
		fwd = append(fwd, r.URI+" "+r.Header.Get("Content-Encoding"))
	}
	if want := "/hooks/amount |/hooks/amount |/hooks/open gzip|/hooks/open |/hooks/open |/hooks/open "; strings.Join(fwd, "|") != want {
		t.Errorf("forwarded %q, want %q", strings.Join(fwd, "|"), want)
	}
}
