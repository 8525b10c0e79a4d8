package webhook

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

const benchBodySize = 2048

// padBody grows a test body to n bytes without changing what the scheme reads
// from it: a JSON member after the opening brace, or a form parameter.
func padBody(body []byte, n int) []byte {
	if len(body) >= n {
		return body
	}
	fill := n - len(body)
	switch {
	case bytes.HasPrefix(body, []byte("[{")):
		return append(append([]byte(`[{"pad":"`+strings.Repeat("x", fill-9)+`",`), body[2:]...), nil...)
	case bytes.HasPrefix(body, []byte("{")):
		return append([]byte(`{"pad":"`+strings.Repeat("x", fill-9)+`",`), body[1:]...)
	default:
		return append(bytes.Clone(body), "&pad="+strings.Repeat("x", fill-5)...)
	}
}

// benchCases is one case per scheme, with a 2 KB body.
func benchCases(tb testing.TB) []schemeCase {
	seen := map[string]bool{}
	var out []schemeCase
	for _, c := range schemeCases() {
		if seen[c.scheme] {
			continue
		}
		seen[c.scheme] = true
		inner := c.body
		c.body = func(ts time.Time) []byte { return padBody(inner(ts), benchBodySize) }
		out = append(out, c)
	}
	if len(out) != len(Schemes()) {
		tb.Fatalf("bench cases cover %d of %d schemes", len(out), len(Schemes()))
	}
	return out
}

func BenchmarkVerify(b *testing.B) {
	for _, c := range benchCases(b) {
		k := c.newKey(b)
		r := c.signed(b, k, testNow)
		o := c.options(k)
		if len(r.Body) != benchBodySize {
			b.Fatalf("%s: body is %d bytes", c.scheme, len(r.Body))
		}
		if res, err := Verify(c.scheme, r, o); err != nil || !res.Valid {
			b.Fatalf("%s: %v %+v", c.scheme, err, res)
		}
		b.Run(c.scheme, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(r.Body)))
			for b.Loop() {
				if res, _ := Verify(c.scheme, r, o); !res.Valid {
					b.Fatal(res.Reason)
				}
			}
		})
	}
}
