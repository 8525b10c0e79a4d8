package webhook

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"hash"
	"mime"
	"net/url"
	"slices"
	"strings"
)

const (
	hdrTwilio      = "x-twilio-signature"
	twilioBodyHash = "bodySHA256"
)

type formParam struct{ k, v string }

// twilio: X-Twilio-Signature = base64(HMAC-SHA1(auth token, url params)) where
// url is the full URL Twilio called and params are, for a form body, every
// name+value pair sorted by name then value. A JSON (non-form) body is instead
// bound by the bodySHA256 query parameter, which the URL signature covers.
// Twilio is inconsistent about the default port, so the URL is tried with and
// without it, as Twilio's own validators do.
func (v *verifier) twilio() (Result, error) {
	base, res, ok, err := v.requestURL()
	if !ok {
		return res, err
	}
	keys, res, ok, err := v.prepare()
	if !ok {
		return res, err
	}
	var buf [maxSigLen]byte
	sig, res, ok := v.b64Sig(&buf, hdrTwilio, sha1.Size)
	if !ok {
		return res, nil
	}
	uri, body := v.r.RequestURI, v.r.Body
	_, query, _ := strings.Cut(uri, "?")
	var params []formParam
	switch hashParam, n := queryValue(query, twilioBodyHash); {
	case n > 1:
		return malformed(twilioBodyHash + " query parameter (repeated)"), nil
	case n == 1:
		var want [sha256.Size]byte
		if !decodeHex(want[:], hashParam) {
			return malformed(twilioBodyHash + " query parameter"), nil
		}
		got := sha256.Sum256(body)
		if !hmac.Equal(got[:], want[:]) {
			return invalid(reasonMismatch + " (" + twilioBodyHash + ")"), nil
		}
	case isForm(v.h.Get("content-type")):
		if params, ok = parseForm(body); !ok {
			return malformed("form body"), nil
		}
	case len(body) > 0:
		// Nothing would bind these bytes to the signature.
		return malformed("request (body neither form-encoded nor covered by " + twilioBodyHash + ")"), nil
	}
	write := func(prefix string) func(hash.Hash) {
		return func(m hash.Hash) {
			writeString(m, prefix)
			writeString(m, uri)
			for _, p := range params {
				writeString(m, p.k)
				writeString(m, p.v)
			}
		}
	}
	eq := func(sum []byte) bool { return hmac.Equal(sum, sig) }
	if macs(v.o.MACs, keys, algSHA1, write(base), eq) {
		return validResult(), nil
	}
	if alt, ok := togglePort(base); ok && macs(v.o.MACs, keys, algSHA1, write(alt), eq) {
		return validResult(), nil
	}
	return invalid(reasonMismatch), nil
}

// queryValue returns the raw value of name in a raw query and how often name
// occurs.
func queryValue(query, name string) (val string, n int) {
	for rest := query; rest != ""; {
		var item string
		item, rest, _ = strings.Cut(rest, "&")
		k, v, _ := strings.Cut(item, "=")
		if k == name {
			val = v
			n++
		}
	}
	return val, n
}

func isForm(contentType string) bool {
	if contentType == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// parseForm decodes an application/x-www-form-urlencoded body into pairs
// sorted by name then value, identical pairs once (Twilio signs each distinct
// value once). Only "&" separates pairs.
func parseForm(body []byte) ([]formParam, bool) {
	var params []formParam
	for rest := string(body); rest != ""; {
		var item string
		item, rest, _ = strings.Cut(rest, "&")
		if item == "" {
			continue
		}
		k, val, _ := strings.Cut(item, "=")
		k, err1 := url.QueryUnescape(k)
		val, err2 := url.QueryUnescape(val)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		params = append(params, formParam{k, val})
	}
	slices.SortFunc(params, func(a, b formParam) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	return slices.Compact(params), true
}

// togglePort returns base with the scheme's default port added when it has no
// port, or removed when it has the default one.
func togglePort(base string) (string, bool) {
	scheme, hostport, ok := strings.Cut(base, "://")
	if !ok {
		return "", false
	}
	def := "80"
	if scheme == "https" {
		def = "443"
	}
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || strings.IndexByte(hostport[i:], ']') >= 0 {
		return base + ":" + def, true
	}
	if hostport[i+1:] == def {
		return scheme + "://" + hostport[:i], true
	}
	return "", false
}
