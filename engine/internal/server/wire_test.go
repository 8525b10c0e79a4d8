package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestWireErrorKind reads requests the real parser refuses, each carrying a secret where its
// error quotes the request, and checks that the kind logged holds nothing of it.
func TestWireErrorKind(t *testing.T) {
	const secret = "hw-secret-31f"
	for _, c := range []struct{ raw, want string }{
		{"POST / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + secret + "\x01\r\n\r\n", kindMalformed},
		{"POST / HTTP/1.1\r\nHost: a\r\nX-A\x01: " + secret + "\r\n\r\n", kindMalformed},
		{"POST /x?token=" + secret + "\x7f HTTP/1.1\r\nHost: a\r\n\r\n", kindMalformed},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: " + secret + "\x01\r\n\r\n", kindMalformed},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", kindLength},
		{"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" + secret + "\r\n0\r\n\r\n", kindMalformed},
		{"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n" + secret[:3], kindIncomplete},
	} {
		var req fasthttp.Request
		err := req.Read(bufio.NewReader(strings.NewReader(c.raw)))
		if err == nil {
			t.Fatalf("%q: the parser accepted it", c.raw)
		}
		if got := wireErrorKind(err); got != c.want || strings.Contains(got, secret) {
			t.Errorf("%q: kind %q (from %q), want %q", c.raw, got, err, c.want)
		}
	}
	if got := wireErrorKind(fmt.Errorf("read: %w", fasthttp.ErrBodyTooLarge)); got != kindBodyTooLarge {
		t.Errorf("body too large: %q", got)
	}
	tlsErr := tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}
	if got := wireErrorKind(fmt.Errorf("handshake: %w", tlsErr)); got != tlsErr.Error() {
		t.Errorf("a refused handshake: %q, want crypto/tls's text", got)
	}
	if got := wireErrorKind(errors.New(`invalid header value "tls: ` + secret + `"`)); got != kindMalformed {
		t.Errorf("a parse error quoting \"tls: \": %q", got)
	}
	args := redactArgs([]any{errors.New(`invalid header value "` + secret + `"`), "GET /x?token=" + secret, []byte(secret), 42})
	if s := fmt.Sprint(args...); strings.Contains(s, secret) || args[3] != 42 {
		t.Errorf("redactArgs kept %q", s)
	}
}
