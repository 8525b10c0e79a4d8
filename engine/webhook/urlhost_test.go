package webhook

import (
	"crypto/sha1"
	"crypto/sha256"
	"testing"
)

// TestRequestHostIsHostPort: without Options.URL, URL-signed schemes sign the request's own
// "scheme://" + Host followed by its RequestURI. A Host that carries a path, query, fragment or
// userinfo moves part of the signed URL out of the request target the gateway routes by: a
// signature Twilio made for https://h/hooks/twilio verified on a request for /twilio sent with
// "Host: h/hooks". Such a Host is malformed, whatever it signs; one that is host[:port] verifies.
// (Through the gateway the listener refuses such a Host first; this is the library's own rule.)
func TestRequestHostIsHostPort(t *testing.T) {
	k := hmacKey(t)
	body := `{"a":1}`
	check := func(t *testing.T, host, uri, want string) {
		t.Helper()
		signed := "https://" + host + uri // what the request, taken as is, would sign
		for _, c := range []struct {
			scheme string
			h      header
			o      Options
			body   []byte
		}{
			{"twilio", header{"x-twilio-signature": b64MAC(sha1.New, k.mac, signed)}, Options{}, nil},
			{"square", header{"x-square-hmacsha256-signature": b64MAC(sha256.New, k.mac, signed, body)}, Options{}, []byte(body)},
			{"hmac", header{"x-sig": hexMAC(k.mac, signed, body)}, Options{SigHeader: "x-sig", Template: "{url}{body}"}, []byte(body)},
		} {
			o := c.o
			o.Secrets, o.Now = [][]byte{k.secret}, testNow
			r := &Request{Method: "POST", Scheme: "https", Host: host, RequestURI: uri, Header: c.h, Body: c.body}
			t.Run(c.scheme+" "+host+" "+uri, func(t *testing.T) {
				if res := verify(t, c.scheme, r, &o); want == "" {
					wantValid(t, res)
				} else {
					wantInvalid(t, res, want)
				}
			})
		}
	}
	for _, host := range []string{testHost, testHost + ":8443", "127.0.0.1:8080", "[::1]:443", "xn--bcher-kva.example"} {
		check(t, host, "/hooks/twilio?x=1", "")
	}
	for _, tc := range []struct{ host, uri string }{
		{testHost + "/hooks", "/twilio"},
		{testHost + "?x=/hooks", "/twilio"},
		{testHost + "#", "/twilio"},
		{"user@" + testHost, "/twilio"},
		{testHost + "\\hooks", "/twilio"},
		{testHost + " ", "/twilio"},
		{testHost + "\x00", "/twilio"},
	} {
		check(t, tc.host, tc.uri, "malformed host")
	}
}
