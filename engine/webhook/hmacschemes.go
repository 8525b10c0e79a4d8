package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strings"
	"time"
)

// Header names, lower-case as Header.Get expects.
const (
	hdrGitHub    = "x-hub-signature-256"
	hdrStripe    = "stripe-signature"
	hdrSlackSig  = "x-slack-signature"
	hdrSlackTS   = "x-slack-request-timestamp"
	hdrZoomSig   = "x-zm-signature"
	hdrZoomTS    = "x-zm-request-timestamp"
	hdrShopify   = "x-shopify-hmac-sha256"
	hdrSquare    = "x-square-hmacsha256-signature"
	hdrPaddle    = "paddle-signature"
	hdrPagerDuty = "x-pagerduty-signature"
	hdrLinear    = "linear-signature"
)

const paddleTolerance = 5 * time.Second

// single is the usual outcome of one signature checked against every key.
func single(p *MACs, keys [][]byte, alg *hashAlg, sig []byte, write func(hash.Hash)) Result {
	if macs(p, keys, alg, write, func(sum []byte) bool { return hmac.Equal(sum, sig) }) {
		return validResult()
	}
	return invalid(reasonMismatch)
}

// prepare returns the raw HMAC keys or the Result/error that ends the call.
func (v *verifier) prepare() (keys [][]byte, res Result, ok bool, err error) {
	keys, ok, err = v.hmacKeys()
	if err != nil {
		return nil, Result{}, false, err
	}
	if !ok {
		return nil, invalid(reasonNoSecret), false, nil
	}
	return keys, Result{}, true, nil
}

// bodyMAC checks a header holding prefix + hex or base64 of HMAC-SHA256(secret, body), the
// shape GitHub, Shopify and Linear share. The encoding is a flag, not a function value, so
// the signature buffer stays on the stack.
func (v *verifier) bodyMAC(header, prefix string, hexEnc bool) (Result, error) {
	keys, res, ok, err := v.prepare()
	if !ok {
		return res, err
	}
	h := v.h.Get(header)
	if h == "" {
		return missing(header), nil
	}
	var buf [maxSigLen]byte
	enc, found := strings.CutPrefix(h, prefix)
	var sig []byte
	var okDec bool
	if hexEnc {
		sig, okDec = decodeHexSig(&buf, enc)
	} else {
		sig, okDec = decodeB64Sig(&buf, enc)
	}
	if !found || !okDec || len(sig) != sha256.Size {
		return malformed(header), nil
	}
	body := v.r.Body
	return single(v.o.MACs, keys, algSHA256, sig, func(m hash.Hash) { _, _ = m.Write(body) }), nil
}

// github: X-Hub-Signature-256 = "sha256=" hex(HMAC-SHA256(secret, body)).
func (v *verifier) github() (Result, error) { return v.bodyMAC(hdrGitHub, "sha256=", true) }

// shopify: X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(secret, body)).
func (v *verifier) shopify() (Result, error) { return v.bodyMAC(hdrShopify, "", false) }

// slackLike covers Slack and Zoom: sig = "v0=" hex(HMAC-SHA256(secret,
// "v0:" ts ":" body)), ts in Unix seconds in its own header.
func (v *verifier) slackLike(sigHeader, tsHeader string) (Result, error) {
	keys, res, ok, err := v.prepare()
	if !ok {
		return res, err
	}
	sv := v.h.Get(sigHeader)
	if sv == "" {
		return missing(sigHeader), nil
	}
	ts := v.h.Get(tsHeader)
	if ts == "" {
		return missing(tsHeader), nil
	}
	var buf [maxSigLen]byte
	hexSig, found := strings.CutPrefix(sv, "v0=")
	sig, okHex := decodeHexSig(&buf, hexSig)
	if !found || !okHex || len(sig) != sha256.Size {
		return malformed(sigHeader), nil
	}
	if res, ok := v.checkUnixSeconds(ts, tsHeader, defaultTolerance); !ok {
		return res, nil
	}
	body := v.r.Body
	return single(v.o.MACs, keys, algSHA256, sig, func(m hash.Hash) {
		writeString(m, "v0:")
		writeString(m, ts)
		writeString(m, ":")
		_, _ = m.Write(body)
	}), nil
}

// stripe: Stripe-Signature = "t=<unix>,v1=<hex>[,v1=<hex>…][,v0=…]", the v1
// values being HMAC-SHA256(secret, t "." body). Any v1 may match (Stripe sends
// several while a secret rolls); v0 and unknown schemes are never accepted.
func (v *verifier) stripe() (Result, error) {
	return v.timestampedList(hdrStripe, ',', "t", "v1", ".", defaultTolerance)
}

// timestampedList verifies a header listing a timestamp and signatures as sep-separated
// key=value items (Stripe's "t=…,v1=…", Paddle's "ts=…;h1=…"): any item of version must be
// the HMAC-SHA256 of the timestamp, join and the body, and the timestamp within tolerance.
func (v *verifier) timestampedList(header string, sep byte, tsKey, version, join string, tolerance time.Duration) (Result, error) {
	keys, res, ok, err := v.prepare()
	if !ok {
		return res, err
	}
	h := v.h.Get(header)
	if h == "" {
		return missing(header), nil
	}
	ts, okParse := listedTimestamp(h, string(sep), tsKey)
	if !okParse {
		return malformed(header), nil
	}
	if ts == "" {
		return malformed(header + " (no " + tsKey + "=)"), nil
	}
	if res, ok := v.checkUnixSeconds(ts, header+" timestamp", tolerance); !ok {
		return res, nil
	}
	body := v.r.Body
	return listedMAC(v.o.MACs, keys, h, sep, '=', version, decodeHexSig, func(m hash.Hash) {
		writeString(m, ts)
		writeString(m, join)
		_, _ = m.Write(body)
	}), nil
}

// listedTimestamp returns the value of the tsKey item of a sep-separated key=value list
// (Stripe's "t=…,v1=…", Paddle's "ts=…;h1=…"). ok is false for an item without "=" or a
// repeated tsKey; the signatures are read by listedMAC.
func listedTimestamp(h string, sep, tsKey string) (ts string, ok bool) {
	// seen, not ts != "": an empty first item ("t=,t=…") is still a repeat.
	seen := false
	for rest := h; rest != ""; {
		var item string
		item, rest, _ = strings.Cut(rest, sep)
		item = trimSpace(item)
		if item == "" {
			continue
		}
		k, val, found := strings.Cut(item, "=")
		if !found {
			return "", false
		}
		if k == tsKey {
			if seen {
				return "", false
			}
			seen, ts = true, val
		}
	}
	return ts, true
}

// anyListed walks a sep-separated list of key<kv>value items and reports
// whether any item named key decodes (by decode) to sum. Undecodable values are
// skipped: they cannot match, and a sender may list schemes we do not know.
func anyListed(list string, sep, kv byte, key string, sum []byte, decode func(*[maxSigLen]byte, string) ([]byte, bool)) bool {
	var buf [maxSigLen]byte
	for rest := list; rest != ""; {
		var item string
		if i := strings.IndexByte(rest, sep); i >= 0 {
			item, rest = rest[:i], rest[i+1:]
		} else {
			item, rest = rest, ""
		}
		item = trimSpace(item)
		i := strings.IndexByte(item, kv)
		if i < 0 || item[:i] != key {
			continue
		}
		if sig, ok := decode(&buf, item[i+1:]); ok && hmac.Equal(sig, sum) {
			return true
		}
	}
	return false
}

// listedMAC checks a header listing signatures as sep-separated version<kv>sig items (Stripe,
// Paddle, PagerDuty, Standard Webhooks): any item of that version matching the HMAC-SHA256 of
// what write feeds is enough; items of other versions are ignored, never accepted.
func listedMAC(p *MACs, keys [][]byte, list string, sep, kv byte, version string, decode func(*[maxSigLen]byte, string) ([]byte, bool), write func(hash.Hash)) Result {
	if countListed(list, sep, kv, version) == 0 {
		return invalid(reasonMismatch + " (no " + version + " signature)")
	}
	if macs(p, keys, algSHA256, write, func(sum []byte) bool { return anyListed(list, sep, kv, version, sum, decode) }) {
		return validResult()
	}
	return invalid(reasonMismatch)
}

// countListed counts the items named key in a sep-separated key<kv>value list.
func countListed(list string, sep, kv byte, key string) int {
	n := 0
	for rest := list; rest != ""; {
		var item string
		if i := strings.IndexByte(rest, sep); i >= 0 {
			item, rest = rest[:i], rest[i+1:]
		} else {
			item, rest = rest, ""
		}
		item = trimSpace(item)
		if i := strings.IndexByte(item, kv); i >= 0 && item[:i] == key {
			n++
		}
	}
	return n
}

// paddle: Paddle-Signature = "ts=<unix>;h1=<hex>[;h1=…]", h1 being
// HMAC-SHA256(secret, ts ":" body). The default window is Paddle's own 5 s.
func (v *verifier) paddle() (Result, error) {
	return v.timestampedList(hdrPaddle, ';', "ts", "h1", ":", paddleTolerance)
}

// pagerduty: X-PagerDuty-Signature = "v1=<hex>[,v1=<hex>…]" over the body;
// one match suffices (PagerDuty lists one per active secret).
func (v *verifier) pagerduty() (Result, error) {
	keys, res, ok, err := v.prepare()
	if !ok {
		return res, err
	}
	h := v.h.Get(hdrPagerDuty)
	if h == "" {
		return missing(hdrPagerDuty), nil
	}
	body := v.r.Body
	return listedMAC(v.o.MACs, keys, h, ',', '=', "v1", decodeHexSig, func(m hash.Hash) { _, _ = m.Write(body) }), nil
}

// Standard Webhooks header names for the two prefixes in the wild.
const (
	hdrStdID     = "webhook-id"
	hdrStdTS     = "webhook-timestamp"
	hdrStdSig    = "webhook-signature"
	hdrSvixID    = "svix-id"
	hdrSvixTS    = "svix-timestamp"
	hdrSvixSig   = "svix-signature"
	stdKeyPrefix = "whsec_"
)

// standard: Standard Webhooks (and Svix). sig header = space-separated
// "v1,<base64>" entries over HMAC-SHA256(key, id "." ts "." body) with key the
// base64 after "whsec_". Unknown versions (v1a, v2 …) are ignored.
func (v *verifier) standard() (Result, error) {
	keys, err := standardKeys(v.o.Secrets)
	if err != nil {
		return Result{}, err
	}
	if len(keys) == 0 {
		return invalid(reasonNoSecret), nil
	}
	idH, tsH, sigH := v.standardHeaders()
	id := v.h.Get(idH)
	if id == "" {
		return missing(idH), nil
	}
	ts := v.h.Get(tsH)
	if ts == "" {
		return missing(tsH), nil
	}
	sv := v.h.Get(sigH)
	if sv == "" {
		return missing(sigH), nil
	}
	if res, ok := v.checkUnixSeconds(ts, tsH, defaultTolerance); !ok {
		return res, nil
	}
	body := v.r.Body
	res := listedMAC(v.o.MACs, keys, sv, ' ', ',', "v1", decodeB64Sig, func(m hash.Hash) {
		writeString(m, id)
		writeString(m, ".")
		writeString(m, ts)
		writeString(m, ".")
		_, _ = m.Write(body)
	})
	if res.Valid {
		res.ID = id
	}
	return res, nil
}

// standardHeaders picks the header names: Options.Prefix when set, else
// "webhook-" unless only "svix-" headers are present. The three names always
// share one prefix, so a request cannot mix them.
func (v *verifier) standardHeaders() (id, ts, sig string) {
	if p := v.o.Prefix; p != "" {
		p = strings.ToLower(p)
		return p + "id", p + "timestamp", p + "signature"
	}
	if v.h.Get(hdrStdID) == "" && v.h.Get(hdrStdTS) == "" && v.h.Get(hdrStdSig) == "" &&
		(v.h.Get(hdrSvixID) != "" || v.h.Get(hdrSvixTS) != "" || v.h.Get(hdrSvixSig) != "") {
		return hdrSvixID, hdrSvixTS, hdrSvixSig
	}
	return hdrStdID, hdrStdTS, hdrStdSig
}

var errStdKey = errors.New("not a Standard Webhooks key (whsec_ followed by base64)")

// standardKeys decodes "whsec_<base64>" secrets (the prefix is optional, as in
// the reference libraries).
func standardKeys(secrets [][]byte) ([][]byte, error) {
	keys := make([][]byte, 0, len(secrets))
	for i, s := range secrets {
		s = bytes.TrimPrefix(s, []byte(stdKeyPrefix))
		k := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
		n, err := base64.StdEncoding.Decode(k, s)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("secret %d: %w", i, errStdKey)
		}
		keys = append(keys, k[:n])
	}
	return keys, nil
}

// b64Sig reads a header holding one base64 signature of size bytes into buf: ok is false with
// the Result to answer when it is missing or malformed (URL-signed schemes).
func (v *verifier) b64Sig(buf *[maxSigLen]byte, header string, size int) (sig []byte, res Result, ok bool) {
	sv := v.h.Get(header)
	if sv == "" {
		return nil, missing(header), false
	}
	sig, ok = decodeB64Sig(buf, sv)
	if !ok || len(sig) != size {
		return nil, malformed(header), false
	}
	return sig, Result{}, true
}

// square: x-square-hmacsha256-signature = base64(HMAC-SHA256(key, url body)),
// url being the notification URL Square was given.
func (v *verifier) square() (Result, error) {
	base, res, ok, err := v.requestURL()
	if !ok {
		return res, err
	}
	keys, res, ok, err := v.prepare()
	if !ok {
		return res, err
	}
	var buf [maxSigLen]byte
	sig, res, ok := v.b64Sig(&buf, hdrSquare, sha256.Size)
	if !ok {
		return res, nil
	}
	uri, body := v.r.RequestURI, v.r.Body
	return single(v.o.MACs, keys, algSHA256, sig, func(m hash.Hash) {
		writeString(m, base)
		writeString(m, uri)
		_, _ = m.Write(body)
	}), nil
}

const linearTSField = "webhookTimestamp"

// linear: Linear-Signature = hex(HMAC-SHA256(secret, body)); the timestamp is
// the body's top-level "webhookTimestamp" (Unix ms), checked once the body is
// known to be authentic.
func (v *verifier) linear() (Result, error) {
	if res, err := v.bodyMAC(hdrLinear, "", true); err != nil || !res.Valid {
		return res, err
	}
	raw, found, okJSON := topLevelField(v.r.Body, linearTSField)
	if !okJSON {
		return malformed("body (not a JSON object)"), nil
	}
	if !found {
		return malformed("body (no " + linearTSField + ")"), nil
	}
	ms, okNum := parseUnix(string(raw))
	if !okNum {
		return malformed("body " + linearTSField), nil
	}
	if !v.fresh(time.UnixMilli(ms), defaultTolerance) {
		return invalid(reasonStale), nil
	}
	return validResult(), nil
}
