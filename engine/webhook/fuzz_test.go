package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The fuzz targets check more than "no panic": whenever Verify says valid, an
// independent naive check must find the signature the secret really makes.

var (
	fuzzSecret = []byte("fuzz-secret-0123456789")
	fuzzBody   = []byte(`{"id":"evt_fuzz","n":1}`)
	fuzzNow    = time.Unix(1_700_000_000, 0)
)

func fuzzOptions() *Options { return &Options{Secrets: [][]byte{fuzzSecret}, Now: fuzzNow} }

// withinDefault reports whether a decimal Unix timestamp lies in ±tol of fuzzNow.
func withinDefault(ts string, tol time.Duration) bool {
	n, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ts[0] == '+' || ts[0] == '-' {
		return false
	}
	d := fuzzNow.Sub(time.Unix(n, 0))
	return d <= tol && d >= -tol
}

func FuzzStripeHeader(f *testing.F) {
	ts := strconv.FormatInt(fuzzNow.Unix(), 10)
	good := hexMAC(fuzzSecret, ts, ".", string(fuzzBody))
	for _, s := range []string{
		"t=" + ts + ",v1=" + good,
		"t=" + ts + ",v1=" + good + ",v0=" + good,
		"t=" + ts + ",v0=" + good,
		"t=" + ts + ",t=" + ts + ",v1=" + good,
		"t=,t=" + ts + ",v1=" + good,
		"v1=" + good,
		"t=1533204620,v1=2220f87ef101a04665f11cdf770523143f875572008577fa0f20882ddb9cc3c7,v0=63f3a72374a733066c4be69ed7f8e5ac85c22c9f0a6a612ab9a025a9e4ee7eef",
		"", ",", "=", "t=,v1=", "t=" + ts + ", v1 = " + good,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		res, err := Verify("stripe", &Request{Header: header{"stripe-signature": h}, Body: fuzzBody}, fuzzOptions())
		if err != nil {
			t.Fatalf("request data gave an error: %v", err)
		}
		if !res.Valid {
			if res.Reason == "" {
				t.Fatal("invalid without reason")
			}
			return
		}
		checkValidList(t, h, ",", "t", "v1", ".", 5*time.Minute)
	})
}

// checkValidList is the oracle of a header the verifier accepted as a timestamped list
// (Stripe, Paddle): exactly one timestamp item, within tolerance, and one version item that
// is the hex HMAC of timestamp, join and body. An item's key is what stands before "=" once
// HTTP's optional whitespace (spaces and tabs, RFC 9110) is trimmed: "\nt" is not "t",
// as in Stripe's own libraries, which trim nothing.
func checkValidList(t *testing.T, h, sep, tsKey, version, join string, tolerance time.Duration) {
	t.Helper()
	var tsv, sigs []string
	for _, item := range strings.Split(h, sep) {
		k, v, _ := strings.Cut(strings.Trim(item, " \t"), "=")
		switch k {
		case tsKey:
			tsv = append(tsv, v)
		case version:
			sigs = append(sigs, strings.ToLower(v))
		}
	}
	if len(tsv) != 1 || !withinDefault(tsv[0], tolerance) {
		t.Fatalf("valid with timestamps %q", tsv)
	}
	want := hexMAC(fuzzSecret, tsv[0], join, string(fuzzBody))
	for _, s := range sigs {
		if s == want {
			return
		}
	}
	t.Fatalf("valid without the right %s in %q", version, h)
}

func FuzzStandardHeader(f *testing.F) {
	key := []byte("0123456789abcdefghijklmn")
	secret := []byte("whsec_" + base64.StdEncoding.EncodeToString(key))
	ts := strconv.FormatInt(fuzzNow.Unix(), 10)
	good := b64MAC(sha256.New, key, "msg_1.", ts, ".", string(fuzzBody))
	for _, s := range [][3]string{
		{"msg_1", ts, "v1," + good},
		{"msg_1", ts, "v1a,AAAA v1,AAAA v1," + good},
		{"msg_1", ts, "v2," + good},
		{"msg_1", ts, "v1," + good[:len(good)-1]},
		{"msg_1", "", "v1," + good},
		{"", ts, ""},
		{"msg_1", ts, "   "},
		{"m", "1614265330", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
	} {
		f.Add(s[0], s[1], s[2], false)
		f.Add(s[0], s[1], s[2], true)
	}
	f.Fuzz(func(t *testing.T, id, ts, sig string, svix bool) {
		p := "webhook-"
		if svix {
			p = "svix-"
		}
		r := &Request{Header: header{p + "id": id, p + "timestamp": ts, p + "signature": sig}, Body: fuzzBody}
		o := fuzzOptions()
		o.Secrets = [][]byte{secret}
		res, err := Verify("standard", r, o)
		if err != nil {
			t.Fatalf("request data gave an error: %v", err)
		}
		if !res.Valid {
			return
		}
		if id == "" || !withinDefault(ts, 5*time.Minute) {
			t.Fatalf("valid with id %q ts %q", id, ts)
		}
		want := mac(sha256.New, key, id, ".", ts, ".", string(fuzzBody))
		for _, e := range strings.Split(sig, " ") {
			v, b, _ := strings.Cut(e, ",")
			// The scheme trims spaces and tabs around list entries (trimSpace); so does the oracle.
			v, b = strings.Trim(v, " \t"), strings.Trim(b, " \t")
			if v != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(b)
			if err != nil {
				got, err = base64.RawStdEncoding.DecodeString(b)
			}
			if err == nil && hmac.Equal(got, want) {
				return
			}
		}
		t.Fatalf("valid without the right v1 in %q", sig)
	})
}

func FuzzPaddleHeader(f *testing.F) {
	ts := strconv.FormatInt(fuzzNow.Unix(), 10)
	good := hexMAC(fuzzSecret, ts, ":", string(fuzzBody))
	for _, s := range []string{
		"ts=" + ts + ";h1=" + good,
		"ts=" + ts + ";h1=" + good + ";h1=" + good + ";h2=RANDOM_HASH",
		"h1=" + good + ";ts=" + ts,
		"ts=" + ts + ";ts=" + ts + ";h1=" + good,
		"ts=" + ts,
		"", ";", "ts=;h1=", "ts=1698796800;h1=a300428748dce5c70e4da19bffd60769591ea969c99dea3105d0ec9612cf43f9",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		res, err := Verify("paddle", &Request{Header: header{"paddle-signature": h}, Body: fuzzBody}, fuzzOptions())
		if err != nil {
			t.Fatalf("request data gave an error: %v", err)
		}
		if !res.Valid {
			return
		}
		checkValidList(t, h, ";", "ts", "h1", ":", 5*time.Second)
	})
}

// FuzzTwilio is differential: an independent signer (net/url parsing) signs
// the fuzzed request, which must then verify, and must stop verifying once the
// signature is altered.
func FuzzTwilio(f *testing.F) {
	f.Add("CallSid=CA1234567890ABCDE&Digits=1234&From=%2B14158675309&To=%2B18005551212&Caller=%2B14158675309", "foo=1&bar=2", true, false)
	f.Add(`{"property": "value", "boolean": true}`, "foo=1&bar=2", false, true)
	f.Add("a=1&a=1&a=0&b=&=x&&c", "", true, false)
	f.Add("x=%zz", "q", true, true)
	f.Add("", "CallSid=1", false, false)
	f.Add("text=a+b%20c", "p=%41", true, true)
	f.Fuzz(func(t *testing.T, body, query string, form, port bool) {
		if strings.Contains(query, twilioBodyHash) || strings.ContainsAny(query, "#") {
			t.Skip()
		}
		base := "https://twilio.example"
		uri := "/voice"
		if query != "" {
			uri += "?" + query
		}
		ctype := ""
		if form {
			ctype = "application/x-www-form-urlencoded"
			if _, err := url.ParseQuery(body); err != nil {
				// Undecodable forms must be refused, never verified.
				h := header{"content-type": ctype, "x-twilio-signature": twilioSign(t, fuzzSecret, base+uri, "", nil)}
				if res, _ := Verify("twilio", &Request{RequestURI: uri, Header: h, Body: []byte(body)}, &Options{Secrets: [][]byte{fuzzSecret}, URL: base}); res.Valid {
					t.Fatal("valid with an undecodable form body")
				}
				return
			}
		} else if body != "" {
			sum := sha256.Sum256([]byte(body))
			sep := "?"
			if query != "" {
				sep = "&"
			}
			uri += sep + twilioBodyHash + "=" + hex.EncodeToString(sum[:])
		}
		signURL := base + uri
		if port {
			signURL = base + ":443" + uri
		}
		sig := twilioSign(t, fuzzSecret, signURL, ctype, []byte(body))
		h := header{"content-type": ctype, "x-twilio-signature": sig}
		o := &Options{Secrets: [][]byte{fuzzSecret}, URL: base}
		res, err := Verify("twilio", &Request{RequestURI: uri, Header: h, Body: []byte(body)}, o)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Valid {
			t.Fatalf("independently signed request invalid: %s", res.Reason)
		}
		raw, _ := base64.StdEncoding.DecodeString(sig)
		raw[0] ^= 1
		h["x-twilio-signature"] = base64.StdEncoding.EncodeToString(raw)
		if res, _ := Verify("twilio", &Request{RequestURI: uri, Header: h, Body: []byte(body)}, o); res.Valid {
			t.Fatal("altered signature verified")
		}
		if len(raw) != sha1.Size {
			t.Fatal("signer produced a non-SHA1 signature")
		}
	})
}

// FuzzTopLevelField compares the Linear timestamp locator with encoding/json
// on every input that is a valid JSON object.
func FuzzTopLevelField(f *testing.F) {
	for _, s := range []string{
		`{"k":1}`, `{"a":{"k":2},"k":3}`, `{"k\u0000":1,"k":"\\\"}"}`, `{"a":"\\\\","k":[{"k":1}]}`,
		`{"k":1,"k":2}`, ` { } `, `{"webhookTimestamp":1700000000000}`, `[1]`, `{"a":"}"`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		val, found, ok := topLevelField(data, "k")
		if !json.Valid(data) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
			if ok {
				t.Fatalf("non-object accepted: %q", data)
			}
			return
		}
		var want json.RawMessage
		n := 0
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatal(err)
			}
			if tok.(string) == "k" {
				want, n = raw, n+1
			}
		}
		switch {
		case n > 1:
			if ok {
				t.Fatalf("duplicate key accepted: %q", data)
			}
		case !ok:
			t.Fatalf("valid object refused: %q", data)
		case found != (n == 1) || found && !bytes.Equal(val, want):
			t.Fatalf("got %q/%v, encoding/json says %q/%v for %q", val, found, want, n == 1, data)
		}
	})
}
