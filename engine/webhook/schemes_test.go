package webhook

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testNow is the verification clock of the scheme tests.
var testNow = time.Unix(1_750_000_000, 0)

const (
	testHost = "hooks.example.com"
	testURI  = "/hooks/in?src=test&n=1"
)

// testKey is one freshly generated credential: secret is what goes into
// Options.Secrets, the rest is what the signer needs.
type testKey struct {
	secret []byte
	mac    []byte // HMAC key (decoded, for Standard Webhooks)
	ec     *ecdsa.PrivateKey
	ed     ed25519.PrivateKey
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func hmacKey(t testing.TB) testKey {
	// Printable like real config values, and long enough that assertNoLeak
	// would notice it in a reason.
	s := []byte(hex.EncodeToString(randBytes(t, 16)))
	return testKey{secret: s, mac: s}
}

func standardKey(t testing.TB) testKey {
	k := randBytes(t, 24)
	return testKey{secret: []byte("whsec_" + base64.StdEncoding.EncodeToString(k)), mac: k}
}

func ecdsaKey(t testing.TB) testKey {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{secret: []byte(base64.StdEncoding.EncodeToString(der)), ec: priv}
}

func ed25519Key(t testing.TB) testKey {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{secret: []byte(hex.EncodeToString(pub)), ed: priv}
}

func mac(newHash func() hash.Hash, key []byte, parts ...string) []byte {
	m := hmac.New(newHash, key)
	for _, p := range parts {
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

func hexMAC(key []byte, parts ...string) string {
	return hex.EncodeToString(mac(sha256.New, key, parts...))
}

func b64MAC(newHash func() hash.Hash, key []byte, parts ...string) string {
	return base64.StdEncoding.EncodeToString(mac(newHash, key, parts...))
}

func unix(ts time.Time) string { return strconv.FormatInt(ts.Unix(), 10) }

// twilioSign is an independent Twilio signer: url, then for a form body each
// distinct name+value sorted by name and value (net/url parses the form).
func twilioSign(t testing.TB, key []byte, fullURL, contentType string, body []byte) string {
	t.Helper()
	s := fullURL
	if strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		vals, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatalf("twilio test signer: %v", err)
		}
		names := make([]string, 0, len(vals))
		for k := range vals {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			vs := slices.Clone(vals[k])
			sort.Strings(vs)
			for _, v := range slices.Compact(vs) {
				s += k + v
			}
		}
	}
	return b64MAC(sha1.New, key, s)
}

// schemeCase describes how to sign for one scheme and what its checks say.
type schemeCase struct {
	name    string
	scheme  string
	newKey  func(testing.TB) testKey
	opts    Options // scheme-specific options (URL, generic settings)
	ctype   string
	body    func(ts time.Time) []byte
	sign    func(t testing.TB, k testKey, r *Request, ts time.Time)
	sigHdr  string // removed by the missing-header test
	tsHdr   string // "" when not in a header
	badSig  string // malformed value for sigHdr
	badWhy  string // reason prefix badSig gives
	stamped bool   // has a timestamp the tolerance bounds
	tol     time.Duration
}

func jsonBody(time.Time) []byte {
	return []byte(`{"id":"evt_1","type":"thing.created","data":{"name":"alpha","n":[1,2,3]}}`)
}

func schemeCases() []schemeCase {
	return []schemeCase{
		{
			name: "github", scheme: "github", newKey: hmacKey, body: jsonBody,
			sign: func(_ testing.TB, k testKey, r *Request, _ time.Time) {
				r.Header.(header)["x-hub-signature-256"] = "sha256=" + hexMAC(k.mac, string(r.Body))
			},
			sigHdr: "x-hub-signature-256", badSig: "sha1=abcd", badWhy: "malformed x-hub-signature-256",
		},
		{
			name: "stripe", scheme: "stripe", newKey: hmacKey, body: jsonBody, stamped: true, tol: 5 * time.Minute,
			sign: func(_ testing.TB, k testKey, r *Request, ts time.Time) {
				r.Header.(header)["stripe-signature"] = "t=" + unix(ts) + ",v1=" + hexMAC(k.mac, unix(ts), ".", string(r.Body)) +
					",v0=" + hexMAC([]byte("test-mode"), string(r.Body))
			},
			sigHdr: "stripe-signature", badSig: "t=1750000000,v1", badWhy: "malformed stripe-signature",
		},
		{
			name: "slack", scheme: "slack", newKey: hmacKey, stamped: true, tol: 5 * time.Minute,
			ctype: "application/x-www-form-urlencoded",
			body:  func(time.Time) []byte { return []byte("token=x&team_id=T1&text=alpha&command=%2Fdo") },
			sign: func(_ testing.TB, k testKey, r *Request, ts time.Time) {
				r.Header.(header)["x-slack-request-timestamp"] = unix(ts)
				r.Header.(header)["x-slack-signature"] = "v0=" + hexMAC(k.mac, "v0:", unix(ts), ":", string(r.Body))
			},
			sigHdr: "x-slack-signature", tsHdr: "x-slack-request-timestamp", badSig: "v1=00", badWhy: "malformed x-slack-signature",
		},
		{
			name: "zoom", scheme: "zoom", newKey: hmacKey, body: jsonBody, stamped: true, tol: 5 * time.Minute,
			sign: func(_ testing.TB, k testKey, r *Request, ts time.Time) {
				r.Header.(header)["x-zm-request-timestamp"] = unix(ts)
				r.Header.(header)["x-zm-signature"] = "v0=" + hexMAC(k.mac, "v0:", unix(ts), ":", string(r.Body))
			},
			sigHdr: "x-zm-signature", tsHdr: "x-zm-request-timestamp", badSig: "v0=zz", badWhy: "malformed x-zm-signature",
		},
		{
			name: "shopify", scheme: "shopify", newKey: hmacKey, body: jsonBody,
			sign: func(_ testing.TB, k testKey, r *Request, _ time.Time) {
				r.Header.(header)["x-shopify-hmac-sha256"] = b64MAC(sha256.New, k.mac, string(r.Body))
			},
			sigHdr: "x-shopify-hmac-sha256", badSig: "not base64!", badWhy: "malformed x-shopify-hmac-sha256",
		},
		{
			name: "twilio-form", scheme: "twilio", newKey: hmacKey, opts: Options{URL: "https://" + testHost},
			ctype: "application/x-www-form-urlencoded",
			body: func(time.Time) []byte {
				return []byte("To=%2B15005550006&From=%2B15005550001&Body=alpha+%26+omega&Media=b&Media=a&Media=b&Empty=")
			},
			sign: func(t testing.TB, k testKey, r *Request, _ time.Time) {
				r.Header.(header)["x-twilio-signature"] = twilioSign(t, k.mac, "https://"+testHost+r.RequestURI, r.Header.Get("content-type"), r.Body)
			},
			sigHdr: "x-twilio-signature", badSig: "c2hvcnQ=", badWhy: "malformed x-twilio-signature",
		},
		{
			name: "twilio-json", scheme: "twilio", newKey: hmacKey, opts: Options{URL: "https://" + testHost},
			body: jsonBody,
			sign: func(t testing.TB, k testKey, r *Request, _ time.Time) {
				sum := sha256.Sum256(r.Body)
				r.RequestURI = testURI + "&bodySHA256=" + hex.EncodeToString(sum[:])
				// Signed with the explicit default port: the verifier must try both.
				r.Header.(header)["x-twilio-signature"] = twilioSign(t, k.mac, "https://"+testHost+":443"+r.RequestURI, "", nil)
			},
			sigHdr: "x-twilio-signature", badSig: "!!!!", badWhy: "malformed x-twilio-signature",
		},
		{
			name: "standard", scheme: "standard", newKey: standardKey, body: jsonBody, stamped: true, tol: 5 * time.Minute,
			sign: func(_ testing.TB, k testKey, r *Request, ts time.Time) {
				h := r.Header.(header)
				h["webhook-id"] = "msg_2Kp0"
				h["webhook-timestamp"] = unix(ts)
				h["webhook-signature"] = "v1a,AAAA v1," + b64MAC(sha256.New, k.mac, "msg_2Kp0.", unix(ts), ".", string(r.Body))
			},
			sigHdr: "webhook-signature", tsHdr: "webhook-timestamp", badSig: "v2,AAAA", badWhy: "signature mismatch (no v1 signature)",
		},
		{
			name: "svix", scheme: "standard", newKey: standardKey, body: jsonBody, stamped: true, tol: 5 * time.Minute,
			sign: func(_ testing.TB, k testKey, r *Request, ts time.Time) {
				h := r.Header.(header)
				h["svix-id"] = "msg_9"
				h["svix-timestamp"] = unix(ts)
				h["svix-signature"] = "v1," + b64MAC(sha256.New, k.mac, "msg_9.", unix(ts), ".", string(r.Body))
			},
			sigHdr: "svix-signature", tsHdr: "svix-timestamp", badSig: "v1,@@@", badWhy: reasonMismatch,
		},
		{
			name: "square", scheme: "square", newKey: hmacKey, body: jsonBody, opts: Options{URL: "https://" + testHost},
			sign: func(_ testing.TB, k testKey, r *Request, _ time.Time) {
				r.Header.(header)["x-square-hmacsha256-signature"] = b64MAC(sha256.New, k.mac, "https://"+testHost+r.RequestURI, string(r.Body))
			},
			sigHdr: "x-square-hmacsha256-signature", badSig: "AAAA", badWhy: "malformed x-square-hmacsha256-signature",
		},
		{
			name: "paddle", scheme: "paddle", newKey: hmacKey, body: jsonBody, stamped: true, tol: 5 * time.Second,
			sign: func(_ testing.TB, k testKey, r *Request, ts time.Time) {
				r.Header.(header)["paddle-signature"] = "ts=" + unix(ts) + ";h1=" + hexMAC(k.mac, unix(ts), ":", string(r.Body))
			},
			sigHdr: "paddle-signature", badSig: "ts=1;ts=2;h1=00", badWhy: "malformed paddle-signature",
		},
		{
			name: "pagerduty", scheme: "pagerduty", newKey: hmacKey, body: jsonBody,
			sign: func(_ testing.TB, k testKey, r *Request, _ time.Time) {
				r.Header.(header)["x-pagerduty-signature"] = "v1=" + hexMAC([]byte("old-secret"), string(r.Body)) + ", v1=" + hexMAC(k.mac, string(r.Body))
			},
			sigHdr: "x-pagerduty-signature", badSig: "sha256=00", badWhy: "signature mismatch (no v1 signature)",
		},
		{
			name: "sendgrid", scheme: "sendgrid", newKey: ecdsaKey, stamped: true, tol: 5 * time.Minute,
			body: func(time.Time) []byte { return []byte(`[{"email":"a@b.c","event":"alpha"}]` + "\r\n") },
			sign: func(t testing.TB, k testKey, r *Request, ts time.Time) {
				d := sha256.Sum256(append([]byte(unix(ts)), r.Body...))
				sig, err := ecdsa.SignASN1(rand.Reader, k.ec, d[:])
				if err != nil {
					t.Fatal(err)
				}
				r.Header.(header)["x-twilio-email-event-webhook-timestamp"] = unix(ts)
				r.Header.(header)["x-twilio-email-event-webhook-signature"] = base64.StdEncoding.EncodeToString(sig)
			},
			sigHdr: "x-twilio-email-event-webhook-signature", tsHdr: "x-twilio-email-event-webhook-timestamp",
			badSig: "%%%", badWhy: "malformed x-twilio-email-event-webhook-signature",
		},
		{
			name: "discord", scheme: "discord", newKey: ed25519Key, stamped: true, tol: 5 * time.Minute,
			body: func(time.Time) []byte { return []byte(`{"type":2,"data":{"name":"alpha"}}`) },
			sign: func(_ testing.TB, k testKey, r *Request, ts time.Time) {
				r.Header.(header)["x-signature-timestamp"] = unix(ts)
				r.Header.(header)["x-signature-ed25519"] = hex.EncodeToString(ed25519.Sign(k.ed, append([]byte(unix(ts)), r.Body...)))
			},
			sigHdr: "x-signature-ed25519", tsHdr: "x-signature-timestamp", badSig: "abcd", badWhy: "malformed x-signature-ed25519",
		},
		{
			name: "linear", scheme: "linear", newKey: hmacKey, stamped: true, tol: 5 * time.Minute,
			body: func(ts time.Time) []byte {
				return []byte(`{"action":"create","data":{"id":"x","title":"alpha","webhookTimestamp":1},"webhookTimestamp":` +
					strconv.FormatInt(ts.UnixMilli(), 10) + `,"type":"Issue"}`)
			},
			sign: func(_ testing.TB, k testKey, r *Request, _ time.Time) {
				r.Header.(header)["linear-signature"] = hexMAC(k.mac, string(r.Body))
			},
			sigHdr: "linear-signature", badSig: "sha256=00", badWhy: "malformed linear-signature",
		},
		{
			name: "hmac-default", scheme: "hmac", newKey: hmacKey, body: jsonBody,
			opts: Options{SigHeader: "X-Signature"},
			sign: func(_ testing.TB, k testKey, r *Request, _ time.Time) {
				r.Header.(header)["x-signature"] = hexMAC(k.mac, string(r.Body))
			},
			sigHdr: "x-signature", badSig: "00", badWhy: "malformed x-signature",
		},
		{
			name: "hmac-sha1-prefix", scheme: "hmac", newKey: hmacKey, body: jsonBody,
			opts: Options{SigHeader: "x-hook-sig", Algorithm: "sha1", Prefix: "sha1="},
			sign: func(_ testing.TB, k testKey, r *Request, _ time.Time) {
				r.Header.(header)["x-hook-sig"] = "sha1=" + hex.EncodeToString(mac(sha1.New, k.mac, string(r.Body)))
			},
			sigHdr: "x-hook-sig", badSig: hex.EncodeToString(make([]byte, 20)), badWhy: "malformed x-hook-sig",
		},
		{
			name: "hmac-sha512-template", scheme: "hmac", newKey: hmacKey, body: jsonBody, stamped: true, tol: 5 * time.Minute,
			opts: Options{
				SigHeader: "x-acme-signature", Algorithm: "sha512", Encoding: "base64", URL: "https://" + testHost,
				Template: "{timestamp}.{id}.{url}.{body}", TimestampHeader: "x-acme-timestamp", IDHeader: "x-acme-id",
			},
			sign: func(_ testing.TB, k testKey, r *Request, ts time.Time) {
				h := r.Header.(header)
				h["x-acme-timestamp"] = unix(ts)
				h["x-acme-id"] = "d-77"
				h["x-acme-signature"] = b64MAC(sha512.New, k.mac, unix(ts), ".d-77.", "https://"+testHost+r.RequestURI, ".", string(r.Body))
			},
			sigHdr: "x-acme-signature", tsHdr: "x-acme-timestamp", badSig: "AAAA", badWhy: "malformed x-acme-signature",
		},
	}
}

// signed builds a request signed by k at ts.
func (c schemeCase) signed(t testing.TB, k testKey, ts time.Time) *Request {
	t.Helper()
	ctype := c.ctype
	if ctype == "" {
		ctype = "application/json"
	}
	r := &Request{
		Method: "POST", Scheme: "https", Host: testHost, RequestURI: testURI,
		Header: header{"content-type": ctype}, Body: c.body(ts),
	}
	c.sign(t, k, r, ts)
	return r
}

func (c schemeCase) options(keys ...testKey) *Options {
	o := c.opts
	o.Now = testNow
	for _, k := range keys {
		o.Secrets = append(o.Secrets, k.secret)
	}
	return &o
}

// verify runs Verify and checks that nothing secret leaks into the outcome.
func verify(t *testing.T, scheme string, r *Request, o *Options) Result {
	t.Helper()
	res, err := Verify(scheme, r, o)
	if err != nil {
		t.Fatalf("Verify: unexpected error: %v", err)
	}
	hdr, _ := r.Header.(header)
	assertNoLeak(t, res, err, o.Secrets, hdr)
	if res.Valid && res.Reason != "" {
		t.Errorf("valid result with reason %q", res.Reason)
	}
	return res
}

func wantValid(t *testing.T, res Result) {
	t.Helper()
	if !res.Valid {
		t.Fatalf("want valid, got %q", res.Reason)
	}
}

func wantInvalid(t *testing.T, res Result, prefix string) {
	t.Helper()
	if res.Valid {
		t.Fatalf("want invalid (%s), got valid", prefix)
	}
	if !strings.HasPrefix(res.Reason, prefix) {
		t.Fatalf("reason %q, want prefix %q", res.Reason, prefix)
	}
}

func cloneReq(r *Request) *Request {
	c := *r
	h := header{}
	for k, v := range r.Header.(header) {
		h[k] = v
	}
	c.Header = h
	c.Body = bytes.Clone(r.Body)
	return &c
}

func TestSchemes(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range schemeCases() {
		covered[c.scheme] = true
		t.Run(c.name, func(t *testing.T) {
			key, other := c.newKey(t), c.newKey(t)

			t.Run("valid", func(t *testing.T) {
				wantValid(t, verify(t, c.scheme, c.signed(t, key, testNow), c.options(key)))
			})
			t.Run("tampered-body", func(t *testing.T) {
				r := c.signed(t, key, testNow)
				if !bytes.Contains(r.Body, []byte("alpha")) {
					t.Fatal("test body lacks the tamper marker")
				}
				r.Body = bytes.Replace(r.Body, []byte("alpha"), []byte("alphb"), 1)
				wantInvalid(t, verify(t, c.scheme, r, c.options(key)), reasonMismatch)
			})
			t.Run("wrong-secret", func(t *testing.T) {
				wantInvalid(t, verify(t, c.scheme, c.signed(t, key, testNow), c.options(other)), reasonMismatch)
			})
			t.Run("rotation", func(t *testing.T) {
				r := c.signed(t, key, testNow)
				wantValid(t, verify(t, c.scheme, r, c.options(other, key)))
				wantValid(t, verify(t, c.scheme, r, c.options(key, other)))
			})
			t.Run("no-secret", func(t *testing.T) {
				wantInvalid(t, verify(t, c.scheme, c.signed(t, key, testNow), c.options()), reasonNoSecret)
			})
			t.Run("missing-header", func(t *testing.T) {
				r := c.signed(t, key, testNow)
				delete(r.Header.(header), c.sigHdr)
				wantInvalid(t, verify(t, c.scheme, r, c.options(key)), "missing header "+c.sigHdr)
			})
			t.Run("malformed-header", func(t *testing.T) {
				r := c.signed(t, key, testNow)
				r.Header.(header)[c.sigHdr] = c.badSig
				wantInvalid(t, verify(t, c.scheme, r, c.options(key)), c.badWhy)
			})
			t.Run("nil-header", func(t *testing.T) {
				r := c.signed(t, key, testNow)
				r.Header = nil
				res, err := Verify(c.scheme, r, c.options(key))
				if err != nil {
					t.Fatal(err)
				}
				wantInvalid(t, res, "missing header ")
			})
			if !c.stamped {
				// Nothing signed carries a time: a tolerance would bound nothing, and is refused.
				t.Run("tolerance-refused", func(t *testing.T) {
					o := c.options(key)
					o.Tolerance = time.Minute
					if _, err := Verify(c.scheme, c.signed(t, key, testNow), o); !errors.Is(err, errNoTime) {
						t.Errorf("Verify with a tolerance: %v, want %v", err, errNoTime)
					}
					if err := CheckOptions(c.scheme, o); !errors.Is(err, errNoTime) {
						t.Errorf("CheckOptions with a tolerance: %v, want %v", err, errNoTime)
					}
				})
				return
			}
			t.Run("stale", func(t *testing.T) {
				r := c.signed(t, key, testNow.Add(-c.tol-time.Second))
				wantInvalid(t, verify(t, c.scheme, r, c.options(key)), reasonStale)
			})
			t.Run("future", func(t *testing.T) {
				r := c.signed(t, key, testNow.Add(c.tol+time.Second))
				wantInvalid(t, verify(t, c.scheme, r, c.options(key)), reasonStale)
			})
			t.Run("edge-of-window", func(t *testing.T) {
				wantValid(t, verify(t, c.scheme, c.signed(t, key, testNow.Add(-c.tol)), c.options(key)))
				wantValid(t, verify(t, c.scheme, c.signed(t, key, testNow.Add(c.tol)), c.options(key)))
			})
			t.Run("tolerance-option", func(t *testing.T) {
				r := c.signed(t, key, testNow.Add(-c.tol-time.Second))
				o := c.options(key)
				o.Tolerance = c.tol + 2*time.Second
				wantValid(t, verify(t, c.scheme, r, o))
				o.Tolerance = time.Second
				wantInvalid(t, verify(t, c.scheme, c.signed(t, key, testNow.Add(-2*time.Second)), o), reasonStale)
			})
			t.Run("zero-now-is-wall-clock", func(t *testing.T) {
				o := c.options(key)
				o.Now = time.Time{}
				wantValid(t, verify(t, c.scheme, c.signed(t, key, time.Now()), o))
				wantInvalid(t, verify(t, c.scheme, c.signed(t, key, testNow), o), reasonStale)
			})
			if c.tsHdr == "" {
				return
			}
			t.Run("missing-timestamp", func(t *testing.T) {
				r := c.signed(t, key, testNow)
				delete(r.Header.(header), c.tsHdr)
				wantInvalid(t, verify(t, c.scheme, r, c.options(key)), "missing header "+c.tsHdr)
			})
			t.Run("malformed-timestamp", func(t *testing.T) {
				for _, bad := range []string{"17e8", "-1750000000", " 1750000000", "1750000000.5", "9999999999999999999999"} {
					r := c.signed(t, key, testNow)
					r.Header.(header)[c.tsHdr] = bad
					wantInvalid(t, verify(t, c.scheme, r, c.options(key)), "malformed ")
				}
			})
		})
	}
	for _, s := range Schemes() {
		if !covered[s] {
			t.Errorf("scheme %s has no signer case", s)
		}
	}
}

func TestSchemesList(t *testing.T) {
	got := Schemes()
	if len(got) != 14 || !sort.StringsAreSorted(got) {
		t.Fatalf("Schemes() = %v, want the 14 scheme names sorted", got)
	}
	got[0] = "mutated"
	if Schemes()[0] == "mutated" {
		t.Fatal("Schemes returns shared state")
	}
	for _, s := range Schemes() {
		if _, err := Verify(s, &Request{Header: header{}}, &Options{}); err != nil && s != "hmac" && s != "twilio" && s != "square" {
			t.Errorf("%s: zero options gave an error: %v", s, err)
		}
	}
}
