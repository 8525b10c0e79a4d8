package delivery

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// DecodeSignKey reads a Standard Webhooks secret: "whsec_" and the key in base64, or the
// base64 alone. The error never quotes the value.
func DecodeSignKey(v []byte) ([]byte, error) {
	s := strings.TrimPrefix(string(v), "whsec_")
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(key) < 16 {
		return nil, errors.New("not a Standard Webhooks secret (whsec_ and at least 16 bytes in base64)")
	}
	return key, nil
}

// signStandard sets the Standard Webhooks headers: webhook-id (the delivery id, the same on
// every attempt), webhook-timestamp (now, in seconds) and webhook-signature
// ("v1," and the base64 HMAC-SHA256 of "id.timestamp.body").
func signStandard(h *fasthttp.RequestHeader, key []byte, id string, now time.Time, body []byte) {
	ts := strconv.FormatInt(now.Unix(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	for _, name := range [...]string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		h.Del(name) // every copy the client sent: Set replaces only the first
	}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", ts)
	h.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
}
