package webhook

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestVerifyErrors(t *testing.T) {
	hk := hmacKey(t)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384DER, _ := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	rsaDER, _ := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	req := func() *Request {
		return &Request{Method: "POST", Scheme: "https", Host: testHost, RequestURI: "/", Header: header{"x-sig": "00"}, Body: []byte("{}")}
	}
	secret := [][]byte{hk.secret}
	tests := []struct {
		name   string
		scheme string
		req    *Request
		opts   *Options
		is     error
	}{
		{"unknown scheme", "nope", req(), &Options{Secrets: secret}, errUnknownScheme},
		{"nil request", "github", nil, &Options{Secrets: secret}, nil},
		{"nil options", "github", req(), nil, nil},
		{"negative tolerance", "stripe", req(), &Options{Secrets: secret, Tolerance: -time.Second}, nil},
		{"tolerance, github signs no time", "github", req(), &Options{Secrets: secret, Tolerance: time.Minute}, errNoTime},
		{"empty hmac secret", "github", req(), &Options{Secrets: [][]byte{hk.secret, {}}}, errEmptySecret},
		{"standard key not base64", "standard", req(), &Options{Secrets: [][]byte{[]byte("whsec_" + string(hk.secret) + "!!")}}, errStdKey},
		{"standard empty key", "standard", req(), &Options{Secrets: [][]byte{[]byte("whsec_")}}, errStdKey},
		{"sendgrid hmac secret", "sendgrid", req(), &Options{Secrets: secret}, errECDSAKey},
		{"sendgrid P-384 key", "sendgrid", req(), &Options{Secrets: [][]byte{[]byte(base64.StdEncoding.EncodeToString(p384DER))}}, errECDSAKey},
		{"sendgrid RSA key", "sendgrid", req(), &Options{Secrets: [][]byte{[]byte(base64.StdEncoding.EncodeToString(rsaDER))}}, errECDSAKey},
		{"sendgrid bad PEM", "sendgrid", req(), &Options{Secrets: [][]byte{[]byte("-----BEGIN PUBLIC KEY-----\nxx")}}, errECDSAKey},
		{"discord short key", "discord", req(), &Options{Secrets: [][]byte{[]byte("abcd")}}, errEd25519Key},
		{"discord non-hex key", "discord", req(), &Options{Secrets: [][]byte{bytes.Repeat([]byte("zz"), 32)}}, errEd25519Key},
		{"hmac no sig header", "hmac", req(), &Options{Secrets: secret}, errNoSigHeader},
		{"hmac algorithm", "hmac", req(), &Options{Secrets: secret, SigHeader: "x-sig", Algorithm: "md5"}, errAlgorithm},
		{"hmac encoding", "hmac", req(), &Options{Secrets: secret, SigHeader: "x-sig", Encoding: "base32"}, errSigEncoding},
		{"hmac unknown placeholder", "hmac", req(), &Options{Secrets: secret, SigHeader: "x-sig", Template: "{body}.{nonce}"}, errTemplate},
		{"hmac unterminated placeholder", "hmac", req(), &Options{Secrets: secret, SigHeader: "x-sig", Template: "{body"}, errTemplate},
		{"hmac timestamp without header", "hmac", req(), &Options{Secrets: secret, SigHeader: "x-sig", Template: "{timestamp}.{body}"}, errNoTSHeader},
		{"hmac unsigned timestamp header", "hmac", req(), &Options{Secrets: secret, SigHeader: "x-sig", TimestampHeader: "x-ts"}, errUnsignedTS},
		{"hmac id without header", "hmac", req(), &Options{Secrets: secret, SigHeader: "x-sig", Template: "{id}{body}"}, errNoIDHeader},
		{"hmac unsigned id header", "hmac", req(), &Options{Secrets: secret, SigHeader: "x-sig", IDHeader: "x-delivery-id"}, errUnsignedID},
		{"hmac template without the body", "hmac", req(), &Options{Secrets: secret, SigHeader: "x-sig", Template: "{id}", IDHeader: "x-id"}, errUnsignedBody},
		{"header, github reads its own", "github", req(), &Options{Secrets: secret, SigHeader: "x-sig"}, errNotRead},
		{"algorithm, stripe's is fixed", "stripe", req(), &Options{Secrets: secret, Algorithm: "sha512"}, errNotRead},
		{"prefix, slack's is fixed", "slack", req(), &Options{Secrets: secret, Prefix: "v0="}, errNotRead},
		{"template, shopify signs the body", "shopify", req(), &Options{Secrets: secret, Template: "{body}"}, errNotRead},
		{"url, stripe signs none", "stripe", req(), &Options{Secrets: secret, URL: "https://a.example"}, errNotRead},
		{"hmac url without {url}", "hmac", req(), &Options{Secrets: secret, SigHeader: "x-sig", URL: "https://a.example"}, errUnsignedURL},
		{"url with path", "square", req(), &Options{Secrets: secret, URL: "https://a.example/hooks"}, nil},
		{"url without scheme", "twilio", req(), &Options{Secrets: secret, URL: "a.example"}, nil},
		{"url with query", "square", req(), &Options{Secrets: secret, URL: "https://a.example?x=1"}, nil},
		{"no url and unknown request scheme", "twilio", &Request{Host: "a", Header: header{}}, &Options{Secrets: secret}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Verify(tc.scheme, tc.req, tc.opts)
			if err == nil {
				t.Fatalf("want error, got %+v", res)
			}
			if res != (Result{}) {
				t.Errorf("error with non-zero result %+v", res)
			}
			if !strings.HasPrefix(err.Error(), "webhook/"+tc.scheme+": ") {
				t.Errorf("error %q lacks the component prefix", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q does not wrap %q", err, tc.is)
			}
			if tc.opts != nil {
				assertNoLeak(t, res, err, tc.opts.Secrets, nil)
			}
			// What CheckOptions can see without a request (hookwall check) it reports the same.
			if (tc.scheme == "hmac" || tc.is == errNotRead) && tc.is != nil {
				if cerr := CheckOptions(tc.scheme, tc.opts); !errors.Is(cerr, tc.is) {
					t.Errorf("CheckOptions = %v, want %q as Verify gives", cerr, tc.is)
				}
			}
		})
	}
}

// caseNamed returns the scheme test case called name.
func caseNamed(t *testing.T, name string) schemeCase {
	t.Helper()
	for _, c := range schemeCases() {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no scheme case %s", name)
	return schemeCase{}
}

func TestStripeHeader(t *testing.T) {
	c := caseNamed(t, "stripe")
	k := c.newKey(t)
	body := c.body(testNow)
	good := hexMAC(k.mac, unix(testNow), ".", string(body))
	wrong := hexMAC([]byte("other"), unix(testNow), ".", string(body))
	ts := unix(testNow)
	tests := []struct {
		header string
		want   string // "" means valid
	}{
		{"t=" + ts + ",v1=" + wrong + ",v1=" + good, ""},
		{"v1=" + good + ",t=" + ts, ""},
		{"t=" + ts + ", v1=" + good, ""}, // a repeated header joined with ", "
		{"t=" + ts + ",v1=" + strings.ToUpper(good), ""},
		{"t=" + ts + ",v1=zz,v1=" + good, ""},
		{"t=" + ts + ",v0=" + good, reasonMismatch + " (no v1 signature)"},
		{"t=" + ts + ",v2=" + good, reasonMismatch + " (no v1 signature)"},
		{"t=" + ts + ",v1=" + wrong, reasonMismatch},
		{"t=" + ts + ",v1=" + good[:62], reasonMismatch},
		{"t=" + ts + ",t=" + ts + ",v1=" + good, "malformed stripe-signature"},
		{"t=,t=" + ts + ",v1=" + good, "malformed stripe-signature"}, // an empty timestamp is still one
		{"t=" + ts + ",t=,v1=" + good, "malformed stripe-signature"},
		{"v1=" + good, "malformed stripe-signature (no t=)"},
		{"t=" + ts + ",v1", "malformed stripe-signature"},
		{"t=abc,v1=" + good, "malformed stripe-signature timestamp"},
		{"t=" + ts + ",v1=" + good + ",", ""},
	}
	for i, tc := range tests {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			r := &Request{Header: header{"stripe-signature": tc.header}, Body: body}
			res := verify(t, "stripe", r, c.options(k))
			if tc.want == "" {
				wantValid(t, res)
			} else {
				wantInvalid(t, res, tc.want)
			}
		})
	}
}

func TestStandardHeaders(t *testing.T) {
	c := caseNamed(t, "standard")
	k := c.newKey(t)
	body := c.body(testNow)
	sig := "v1," + b64MAC(sha256.New, k.mac, "id1.", unix(testNow), ".", string(body))
	t.Run("mixed prefixes are not combined", func(t *testing.T) {
		r := &Request{Header: header{"webhook-id": "id1", "svix-timestamp": unix(testNow), "svix-signature": sig}, Body: body}
		wantInvalid(t, verify(t, "standard", r, c.options(k)), "missing header webhook-timestamp")
	})
	t.Run("custom prefix", func(t *testing.T) {
		r := &Request{Header: header{"x-acme-webhook-id": "id1", "x-acme-webhook-timestamp": unix(testNow), "x-acme-webhook-signature": sig}, Body: body}
		o := c.options(k)
		o.Prefix = "X-Acme-Webhook-"
		wantValid(t, verify(t, "standard", r, o))
		wantInvalid(t, verify(t, "standard", r, c.options(k)), "missing header webhook-id")
	})
	t.Run("key without whsec_ prefix", func(t *testing.T) {
		r := &Request{Header: header{"webhook-id": "id1", "webhook-timestamp": unix(testNow), "webhook-signature": sig}, Body: body}
		o := c.options()
		o.Secrets = [][]byte{[]byte(strings.TrimPrefix(string(k.secret), "whsec_"))}
		wantValid(t, verify(t, "standard", r, o))
	})
	t.Run("id is signed", func(t *testing.T) {
		r := &Request{Header: header{"webhook-id": "id2", "webhook-timestamp": unix(testNow), "webhook-signature": sig}, Body: body}
		wantInvalid(t, verify(t, "standard", r, c.options(k)), reasonMismatch)
	})
	t.Run("missing id", func(t *testing.T) {
		r := &Request{Header: header{"webhook-timestamp": unix(testNow), "webhook-signature": sig}, Body: body}
		wantInvalid(t, verify(t, "standard", r, c.options(k)), "missing header webhook-id")
	})
}

func TestTwilio(t *testing.T) {
	k := hmacKey(t)
	const base = "https://" + testHost
	form := []byte("B=2&A=1&A=0")
	sign := func(fullURL, ctype string, body []byte) header {
		return header{"x-twilio-signature": twilioSign(t, k.mac, fullURL, ctype, body), "content-type": ctype}
	}
	opts := func(u string) *Options { return &Options{Secrets: [][]byte{k.secret}, URL: u} }
	formType := "application/x-www-form-urlencoded; charset=utf-8"
	tests := []struct {
		name string
		url  string // Options.URL
		uri  string
		hdr  header
		body []byte
		want string
	}{
		{"form", base, "/t", sign(base+"/t", formType, form), form, ""},
		{"form signed with :443", base, "/t", sign(base+":443/t", formType, form), form, ""},
		{"form signed without port, url has :443", base + ":443", "/t", sign(base+"/t", formType, form), form, ""},
		{"http default port", "http://" + testHost, "/t", sign("http://"+testHost+":80/t", formType, form), form, ""},
		{"non-default port kept", base + ":8443", "/t", sign(base+":8443/t", formType, form), form, ""},
		{"non-default port not dropped", base + ":8443", "/t", sign(base+"/t", formType, form), form, reasonMismatch},
		{"param order does not matter", base, "/t", sign(base+"/t", formType, []byte("A=0&A=1&B=2")), form, ""},
		{"form param changed", base, "/t", sign(base+"/t", formType, form), []byte("B=2&A=1&A=9"), reasonMismatch},
		{"form param added", base, "/t", sign(base+"/t", formType, form), []byte("B=2&A=1&A=0&C="), reasonMismatch},
		{"bad form escape", base, "/t", sign(base+"/t", formType, form), []byte("A=%zz"), "malformed form body"},
		{"GET without body", base, "/t?CallSid=1", sign(base+"/t?CallSid=1", "", nil), nil, ""},
		{"json without bodySHA256", base, "/t", sign(base+"/t", "", nil), []byte(`{"a":1}`), "malformed request"},
		{"bodySHA256 bad hex", base, "/t?bodySHA256=xyz", sign(base+"/t?bodySHA256=xyz", "", nil), []byte(`{"a":1}`), "malformed bodySHA256"},
		{"bodySHA256 repeated", base, "/t?bodySHA256=a&bodySHA256=b", sign(base+"/t?bodySHA256=a&bodySHA256=b", "", nil), []byte(`{"a":1}`), "malformed bodySHA256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Request{Scheme: "https", Host: "internal", RequestURI: tc.uri, Header: tc.hdr, Body: tc.body}
			res := verify(t, "twilio", r, opts(tc.url))
			if tc.want == "" {
				wantValid(t, res)
			} else {
				wantInvalid(t, res, tc.want)
			}
		})
	}
	t.Run("json bodySHA256 bound to body", func(t *testing.T) {
		body := []byte(`{"a":1}`)
		sum := sha256.Sum256(body)
		uri := "/t?x=1&bodySHA256=" + hex.EncodeToString(sum[:])
		hdr := sign(base+uri, "application/json", nil)
		wantValid(t, verify(t, "twilio", &Request{RequestURI: uri, Header: hdr, Body: body}, opts(base)))
		wantInvalid(t, verify(t, "twilio", &Request{RequestURI: uri, Header: hdr, Body: []byte(`{"a":2}`)}, opts(base)),
			reasonMismatch+" (bodySHA256)")
	})
	t.Run("request host fallback", func(t *testing.T) {
		r := &Request{Scheme: "https", Host: testHost, RequestURI: "/t", Header: sign(base+"/t", formType, form), Body: form}
		wantValid(t, verify(t, "twilio", r, opts("")))
		r.Host = ""
		wantInvalid(t, verify(t, "twilio", r, opts("")), "missing header host")
	})
}

func TestTogglePort(t *testing.T) {
	tests := []struct{ in, want string }{
		{"https://a.example", "https://a.example:443"},
		{"https://a.example:443", "https://a.example"},
		{"http://a.example", "http://a.example:80"},
		{"http://a.example:80", "http://a.example"},
		{"http://a.example:443", ""},
		{"https://[::1]", "https://[::1]:443"},
		{"https://[::1]:443", "https://[::1]"},
		{"https://[::1]:8443", ""},
		{"nonsense", ""},
	}
	for _, tc := range tests {
		got, ok := togglePort(tc.in)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("togglePort(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
}

func TestLinearBodyTimestamp(t *testing.T) {
	k := hmacKey(t)
	ms := strconv.FormatInt(testNow.UnixMilli(), 10)
	tests := []struct {
		name, body, want string
	}{
		{"top level", `{"webhookTimestamp":` + ms + `}`, ""},
		{"after nested objects", ` { "data" : {"a":[{"webhookTimestamp":1}], "s":"}\"{"} , "webhookTimestamp" : ` + ms + ` } `, ""},
		{"escaped key", `{"webhook\u0054imestamp":` + ms + `}`, ""},
		{"only nested", `{"data":{"webhookTimestamp":` + ms + `}}`, "malformed body (no webhookTimestamp)"},
		{"duplicate", `{"webhookTimestamp":` + ms + `,"webhookTimestamp":` + ms + `}`, "malformed body (not a JSON object)"},
		{"string value", `{"webhookTimestamp":"` + ms + `"}`, "malformed body webhookTimestamp"},
		{"float value", `{"webhookTimestamp":` + ms + `.5}`, "malformed body webhookTimestamp"},
		{"array body", `[{"webhookTimestamp":` + ms + `}]`, "malformed body (not a JSON object)"},
		{"truncated", `{"webhookTimestamp":` + ms, "malformed body (not a JSON object)"},
		{"seconds not ms", `{"webhookTimestamp":` + unix(testNow) + `}`, reasonStale},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &Request{Header: header{"linear-signature": hexMAC(k.mac, tc.body)}, Body: []byte(tc.body)}
			res := verify(t, "linear", r, &Options{Secrets: [][]byte{k.secret}, Now: testNow})
			if tc.want == "" {
				wantValid(t, res)
			} else {
				wantInvalid(t, res, tc.want)
			}
		})
	}
}

func TestTopLevelField(t *testing.T) {
	tests := []struct {
		in        string
		val       string
		found, ok bool
	}{
		{`{}`, "", false, true},
		{`{"k":1}`, "1", true, true},
		{`{"a":"k","k":true}`, "true", true, true},
		{`{"a":{"k":1},"b":[1,{"k":2}],"k":null}`, "null", true, true},
		{`{"a":"\\","k":-3}`, "-3", true, true},
		{`{"k":[1,2]}`, "[1,2]", true, true},
		{`{"k":1,"k":2}`, "", false, false},
		{`{"k"1}`, "", false, false},
		{`{"k":}`, "", false, false},
		{`{"k":1 2}`, "", false, false},
		{`"k"`, "", false, false},
		{``, "", false, false},
		{`{"a":[1,2}`, "", false, false},
		{`{"a":"x`, "", false, false},
		{strings.Repeat("[", 100000), "", false, false},
		{`{"x":` + strings.Repeat("[", 100000) + `}`, "", false, false},
	}
	for _, tc := range tests {
		val, found, ok := topLevelField([]byte(tc.in), "k")
		if string(val) != tc.val || found != tc.found || ok != tc.ok {
			t.Errorf("topLevelField(%.40q) = %q, %v, %v; want %q, %v, %v", tc.in, val, found, ok, tc.val, tc.found, tc.ok)
		}
	}
}

func TestDiscordTimestamp(t *testing.T) {
	c := caseNamed(t, "discord")
	k := c.newKey(t)
	r := c.signed(t, k, time.Unix(0, 0))
	// Signed with an empty timestamp: only acceptable at the epoch (the
	// RFC 8032 primitive vector); against a real clock it is a missing header.
	h := r.Header.(header)
	h["x-signature-timestamp"] = ""
	h["x-signature-ed25519"] = hex.EncodeToString(ed25519.Sign(k.ed, r.Body))
	o := c.options(k)
	wantInvalid(t, verify(t, "discord", r, o), "missing header x-signature-timestamp")
	o.Now = time.Unix(0, 0)
	wantValid(t, verify(t, "discord", r, o))
	// Moving the signed timestamp into the body (ts‖body unchanged) must fail.
	signed := c.signed(t, k, testNow)
	moved := &Request{
		Header: header{"x-signature-ed25519": signed.Header.Get("x-signature-ed25519")},
		Body:   append([]byte(unix(testNow)), signed.Body...),
	}
	wantInvalid(t, verify(t, "discord", moved, c.options(k)), "missing header x-signature-timestamp")
}

func TestSendGridPEMAndRotationAcrossFormats(t *testing.T) {
	c := caseNamed(t, "sendgrid")
	k := c.newKey(t)
	der, err := base64.StdEncoding.DecodeString(string(k.secret))
	if err != nil {
		t.Fatal(err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	r := c.signed(t, k, testNow)
	o := c.options(c.newKey(t))
	o.Secrets = append(o.Secrets, append(pemKey, '\n'))
	wantValid(t, verify(t, "sendgrid", r, o))
	// The signature covers the trailing CRLF: no normalisation may drop it.
	r.Body = bytes.TrimRight(r.Body, "\r\n")
	wantInvalid(t, verify(t, "sendgrid", r, o), reasonMismatch)
}

func TestGenericURLAndTrailingSlash(t *testing.T) {
	k := hmacKey(t)
	body := []byte(`{"alpha":1}`)
	sig := hexMAC(k.mac, "POST ", "https://"+testHost+"/in?q=1", " ", string(body))
	o := &Options{Secrets: [][]byte{k.secret}, SigHeader: "x-sig", Template: "POST {url} {body}", URL: "https://" + testHost + "/"}
	r := &Request{RequestURI: "/in?q=1", Header: header{"x-sig": sig}, Body: body}
	wantValid(t, verify(t, "hmac", r, o))
	r.RequestURI = "/in?q=2"
	wantInvalid(t, verify(t, "hmac", r, o), reasonMismatch)
}

func TestVerifyDoesNotModifyInput(t *testing.T) {
	for _, c := range schemeCases() {
		k := c.newKey(t)
		r := c.signed(t, k, testNow)
		before := cloneReq(r)
		o := c.options(k)
		secrets := make([][]byte, len(o.Secrets))
		for i, s := range o.Secrets {
			secrets[i] = bytes.Clone(s)
		}
		wantValid(t, verify(t, c.scheme, r, o))
		if !bytes.Equal(r.Body, before.Body) || r.RequestURI != before.RequestURI {
			t.Errorf("%s: request changed", c.name)
		}
		for i := range secrets {
			if !bytes.Equal(secrets[i], o.Secrets[i]) {
				t.Errorf("%s: secret %d changed", c.name, i)
			}
		}
	}
}

// TestConcurrentVerify hammers every scheme from several goroutines released
// together; run with -race it checks that Verify shares no mutable state.
func TestConcurrentVerify(t *testing.T) {
	type job struct {
		c schemeCase
		r *Request
		o *Options
	}
	var jobs []job
	for _, c := range schemeCases() {
		k := c.newKey(t)
		jobs = append(jobs, job{c, c.signed(t, k, testNow), c.options(k)})
	}
	const P, N = 8, 20
	start := make(chan struct{})
	errs := make(chan string, P*N*len(jobs))
	var wg sync.WaitGroup
	for p := 0; p < P; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; i < N; i++ {
				for _, j := range jobs {
					res, err := Verify(j.c.scheme, j.r, j.o)
					if err != nil || !res.Valid {
						errs <- j.c.name + ": " + res.Reason
					}
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
