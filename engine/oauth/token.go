package oauth

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"time"
)

// Result is what Verify found. Claims is nil unless Valid; its numbers are json.Number.
type Result struct {
	Valid  bool
	Reason string
	Claims map[string]any
}

// Reasons Verify gives for a refused token. They name what failed, never the token.
const (
	ReasonNoToken        = "no token"
	ReasonNotBearer      = "authorization scheme is not Bearer"
	ReasonMalformed      = "malformed token"
	ReasonTooLarge       = "token too large"
	ReasonAlgorithm      = "algorithm not allowed"
	ReasonCrit           = "token has critical header parameters"
	ReasonUnknownKey     = "no key for the token's kid"
	ReasonNoKid          = "token names no kid and several keys fit it"
	ReasonKeyType        = "key type does not match the algorithm"
	ReasonSignature      = "bad signature"
	ReasonExpired        = "token expired"
	ReasonNoExp          = "token has no exp"
	ReasonNotYetValid    = "token not yet valid"
	ReasonIssuedFuture   = "token issued in the future"
	ReasonIssuer         = "wrong issuer"
	ReasonAudience       = "wrong audience"
	ReasonClaims         = "malformed claims"
	ReasonKeysStale      = "issuer keys unavailable"
	ReasonOpaque         = "opaque token and no introspection_url"
	ReasonInactive       = "token inactive"
	ReasonIntrospectFail = "introspection failed"
)

// MaxTokenSize bounds a token's length; a longer one is refused before it is decoded.
const MaxTokenSize = 16 << 10

// bearer extracts the token from a bare token or an Authorization header value
// ("Bearer <token>", scheme case-insensitive as RFC 7235 says). It returns a reason when
// the value is in another form.
func bearer(v string) (string, string) {
	v = strings.TrimSpace(v)
	if v == "" || strings.EqualFold(v, "bearer") {
		return "", ReasonNoToken
	}
	if i := strings.IndexByte(v, ' '); i >= 0 {
		if !strings.EqualFold(v[:i], "bearer") {
			return "", ReasonNotBearer
		}
		v = strings.TrimLeft(v[i+1:], " ")
		if v == "" {
			return "", ReasonNoToken
		}
		if strings.ContainsAny(v, " \t,") {
			return "", ReasonMalformed
		}
	}
	if len(v) > MaxTokenSize {
		return "", ReasonTooLarge
	}
	return v, ""
}

// verifyJWT checks a compact JWS's signature with the issuer's keys and its claims. dot1
// and dot2 are the indexes of the two dots.
func (is *Issuer) verifyJWT(ctx context.Context, tok string, dot1, dot2 int, now time.Time) Result {
	h, ok := is.headers.get(tok[:dot1])
	if !ok {
		var r string
		if h, r = parseHeader(tok[:dot1], is.algs); r != "" {
			return refuse(r)
		}
		is.headers.put(tok[:dot1], h)
	}
	// One buffer holds the signing input, then the decoded claims and signature.
	claimsB64, sigB64 := tok[dot1+1:dot2], tok[dot2+1:]
	buf := make([]byte, dot2, dot2+b64token.DecodedLen(len(claimsB64))+b64token.DecodedLen(len(sigB64)))
	copy(buf, tok[:dot2])
	signed := buf[:dot2]
	cb, err := b64token.AppendDecode(buf[dot2:dot2], signed[dot1+1:])
	if err != nil {
		return refuse(ReasonMalformed)
	}
	sig, err := b64token.AppendDecode(cb[len(cb):], []byte(sigB64))
	if err != nil {
		return refuse(ReasonMalformed)
	}
	if h.alg.kind == kindHMAC {
		// is.algs holds an HMAC algorithm only when a shared secret is configured; the key
		// set is never consulted for it, so a public key cannot serve as an HMAC secret.
		if !verifyHMAC(h.alg, is.hmacSecrets, signed, sig) {
			return refuse(ReasonSignature)
		}
	} else if r := is.verifySignature(ctx, h, signed, sig, now); r != "" {
		return refuse(r)
	}
	return is.checkClaims(cb, now)
}

// jwsHeader is a parsed, accepted JOSE header. Immutable: it is cached by its text.
type jwsHeader struct {
	alg    *algorithm
	kid    string
	hasKid bool
}

// parseHeader decodes and checks a header segment: a JSON object with exact, unique member
// names (the strict parser the claims use: no case-folded or repeated "alg"), no "crit", an
// accepted alg, and a kid that is a string when present.
func parseHeader(seg string, algs map[string]*algorithm) (*jwsHeader, string) {
	raw, err := b64token.DecodeString(seg)
	if err != nil {
		return nil, ReasonMalformed
	}
	h, err := parseClaims(raw)
	if err != nil {
		return nil, ReasonMalformed
	}
	if _, ok := h["crit"]; ok {
		return nil, ReasonCrit
	}
	name, _ := h["alg"].(string)
	a := algs[name]
	if a == nil {
		return nil, ReasonAlgorithm
	}
	out := &jwsHeader{alg: a}
	if kid, ok := h["kid"]; ok {
		if out.kid, ok = kid.(string); !ok {
			return nil, ReasonMalformed
		}
		out.hasKid = true
	}
	return out, ""
}

// headerCache maps header segments to their parsed form: an issuer's tokens share a few
// headers (one per key and algorithm), so most tokens skip the header's JSON. Bounded; only
// accepted headers are kept.
type headerCache struct {
	mu sync.RWMutex
	m  map[string]*jwsHeader
}

const maxCachedHeaders = 64

func (c *headerCache) get(seg string) (*jwsHeader, bool) {
	c.mu.RLock()
	h, ok := c.m[seg]
	c.mu.RUnlock()
	return h, ok
}

func (c *headerCache) put(seg string, h *jwsHeader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*jwsHeader{}
	}
	if len(c.m) < maxCachedHeaders && len(seg) <= 512 {
		c.m[strings.Clone(seg)] = h // seg may be a view of a request buffer
	}
}

// verifySignature finds the token's key in the current set (asking for one early refresh
// when its kid is unknown) and checks the signature. It returns "" when it holds.
func (is *Issuer) verifySignature(ctx context.Context, h *jwsHeader, signed, sig []byte, now time.Time) string {
	a, kid, hasKid := h.alg, h.kid, h.hasKid
	set := is.keys.Load()
	if set == nil || (hasKid && set.byKid[kid] == nil) {
		set = is.awaitRefresh(ctx)
	}
	if set == nil || now.UnixNano() > set.fetched+int64(is.cfg.CacheTTL+is.cfg.MaxStale) {
		return ReasonKeysStale
	}
	cands := set.candidates(kid, hasKid)
	if len(cands) == 0 {
		return ReasonUnknownKey
	}
	if kid == "" {
		// OpenID Connect Core 1.0 section 10.1: with several keys in the set, a token names
		// its key. Tried against each, a made-up token would cost a signature check per key
		// (up to max_keys) where one with a kid costs one. A kid of "" names none either: it
		// picks the set's keys without a kid, of which there may be as many.
		fitting := 0
		for _, k := range cands {
			if k.fits(a) {
				fitting++
			}
		}
		if fitting > 1 {
			return ReasonNoKid
		}
	}
	fit := false
	for _, k := range cands {
		if !k.fits(a) {
			continue
		}
		fit = true
		if k.verify(a, signed, sig) {
			return ""
		}
	}
	if !fit {
		return ReasonKeyType
	}
	return ReasonSignature
}

// checkClaims parses the claims and checks iss, aud, exp, nbf and iat.
func (is *Issuer) checkClaims(raw []byte, now time.Time) Result {
	claims, err := parseClaims(raw)
	if err != nil {
		return refuse(ReasonClaims)
	}
	if r := is.checkStandard(claims, now, true); r != "" {
		return refuse(r)
	}
	return Result{Valid: true, Claims: claims}
}

// checkStandard checks the registered claims of a JWT or an introspection answer. jwt: a
// token without exp or iss is refused; an introspection answer may omit them (RFC 7662 section 2.2).
func (is *Issuer) checkStandard(claims map[string]any, now time.Time, jwt bool) string {
	if iss, present := claims["iss"]; is.cfg.Issuer != "" && (jwt || present) {
		if s, _ := iss.(string); s != is.cfg.Issuer {
			return ReasonIssuer
		}
	}
	if len(is.cfg.Audiences) > 0 && !is.audienceOK(claims["aud"]) {
		return ReasonAudience
	}
	leeway := is.cfg.Leeway.Seconds()
	t := float64(now.UnixNano()) / 1e9
	exp, ok, bad := numericDate(claims, "exp")
	switch {
	case bad:
		return ReasonClaims
	case !ok && jwt:
		return ReasonNoExp
	case ok && t >= exp+leeway:
		return ReasonExpired
	}
	if nbf, ok, bad := numericDate(claims, "nbf"); bad {
		return ReasonClaims
	} else if ok && t+leeway < nbf {
		return ReasonNotYetValid
	}
	if iat, ok, bad := numericDate(claims, "iat"); bad {
		return ReasonClaims
	} else if ok && t+leeway < iat {
		return ReasonIssuedFuture
	}
	return ""
}

func (is *Issuer) audienceOK(v any) bool {
	match := func(s string) bool {
		for _, a := range is.cfg.Audiences {
			if a == s {
				return true
			}
		}
		return false
	}
	switch x := v.(type) {
	case string:
		return match(x)
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && match(s) {
				return true
			}
		}
	}
	return false
}

// numericDate reads a NumericDate claim: ok when present, bad when present but not a finite
// number.
func numericDate(claims map[string]any, name string) (v float64, ok, bad bool) {
	raw, present := claims[name]
	if !present {
		return 0, false, false
	}
	n, isNum := raw.(json.Number)
	if !isNum {
		return 0, false, true
	}
	f, err := n.Float64()
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false, true
	}
	return f, true, false
}

func refuse(reason string) Result { return Result{Reason: reason} }
