package oauth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// introCache holds introspection answers by the token's SHA-256, each until its expiry, at
// most maxIntrospectCache of them. An issuer keeps two: one of active answers and one of
// refusals, so that made-up tokens, which anyone can send by the thousand, fill only the
// refusals' and never push a valid token's answer out.
type introCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]introEntry
}

type introEntry struct {
	res     Result
	expires int64 // unix nanoseconds
}

// introEvictTries is how many entries a put into a full cache looks at for an expired one
// before it evicts the last it looked at: a put costs a few steps, not a walk of the cache.
const introEvictTries = 8

func (c *introCache) get(k [sha256.Size]byte, now int64) (Result, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return Result{}, false
	}
	if now >= e.expires {
		delete(c.m, k)
		return Result{}, false
	}
	return e.res, true
}

func (c *introCache) put(k [sha256.Size]byte, res Result, expires, now int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[sha256.Size]byte]introEntry{}
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= maxIntrospectCache {
		// Map iteration starts at a random entry: the one evicted, when none of those looked
		// at has expired, is a random one (for refusals, most likely a made-up token's).
		n := 0
		for old, e := range c.m {
			n++
			if now >= e.expires || n == introEvictTries {
				delete(c.m, old)
				break
			}
		}
	}
	c.m[k] = introEntry{res: res, expires: expires}
}

func (c *introCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// introspect asks the introspection endpoint about tok (RFC 7662), or the cache.
func (is *Issuer) introspect(ctx context.Context, tok string, now time.Time) Result {
	sum := sha256.Sum256([]byte(tok))
	wall := is.now().UnixNano()
	if res, ok := is.introActive.get(sum, wall); ok {
		if res.Valid {
			// A cached active answer is checked again: its exp may have passed meanwhile.
			if r := is.checkStandard(res.Claims, now, false); r != "" {
				return refuse(r)
			}
		}
		return res
	}
	if res, ok := is.introRefused.get(sum, wall); ok {
		return res
	}
	select {
	case is.introSlots <- struct{}{}:
	case <-ctx.Done():
		is.introErrs.Add(1)
		return refuse(ReasonIntrospectFail)
	}
	is.intro.Add(1)
	claims, err := is.callIntrospection(ctx, tok)
	<-is.introSlots
	if err != nil {
		is.introErrs.Add(1)
		is.log.Warn("oauth: introspection failed", "err", err) // err never holds the token
		return refuse(ReasonIntrospectFail)
	}
	if active, _ := claims["active"].(bool); !active {
		res := refuse(ReasonInactive)
		is.introRefused.put(sum, res, wall+int64(is.cfg.NegativeTTL), wall)
		return res
	}
	if r := is.checkStandard(claims, now, false); r != "" {
		// Refused on its claims (audience, issuer, lifetime): cached like an inactive one.
		res := refuse(r)
		is.introRefused.put(sum, res, wall+int64(is.cfg.NegativeTTL), wall)
		return res
	}
	res := Result{Valid: true, Claims: claims}
	expires := wall + int64(is.cfg.CacheTTL)
	if exp, ok, _ := numericDate(claims, "exp"); ok && exp*1e9 < float64(expires) {
		expires = int64(exp * 1e9) // compared as a float: a far exp overflows int64
	}
	is.introActive.put(sum, res, expires, wall)
	return res
}

// callIntrospection POSTs the token to the endpoint with the client's credentials.
func (is *Issuer) callIntrospection(ctx context.Context, tok string) (map[string]any, error) {
	ctx, cancel := context.WithTimeout(ctx, is.cfg.Timeout)
	defer cancel()
	form := url.Values{"token": {tok}, "token_type_hint": {"access_token"}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, is.cfg.IntrospectionURL, strings.NewReader(form))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 section 2.3.1: the client id and secret are form-encoded before HTTP Basic.
	req.SetBasicAuth(url.QueryEscape(is.cfg.ClientID), url.QueryEscape(string(is.cfg.ClientSecret)))
	body, err := is.do(req)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var claims map[string]any
	if err := d.Decode(&claims); err != nil || claims == nil {
		return nil, errIntrospectionAnswer
	}
	return claims, nil
}

type introspectionError string

func (e introspectionError) Error() string { return string(e) }

const errIntrospectionAnswer = introspectionError("introspection answer is not a JSON object")
