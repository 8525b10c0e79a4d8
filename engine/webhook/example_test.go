package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hookwall/hookwall/engine/webhook"
)

// headerMap adapts a net/http header to webhook.Header.
type headerMap http.Header

func (h headerMap) Get(name string) string {
	return strings.Join(http.Header(h).Values(name), ", ")
}

// GitHub's documented test delivery: secret "It's a Secret to Everybody",
// body "Hello, World!".
func ExampleVerify() {
	h := http.Header{}
	h.Set("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	req := &webhook.Request{
		Method: "POST", Scheme: "https", Host: "hooks.example.com", RequestURI: "/hooks/github",
		Header: headerMap(h), Body: []byte("Hello, World!"),
	}
	opts := &webhook.Options{Secrets: [][]byte{[]byte("old secret"), []byte("It's a Secret to Everybody")}}

	res, err := webhook.Verify("github", req, opts)
	fmt.Println(res.Valid, err)

	req.Body = []byte("Hello, World?")
	res, _ = webhook.Verify("github", req, opts)
	fmt.Println(res.Valid, res.Reason)

	h.Del("X-Hub-Signature-256")
	res, _ = webhook.Verify("github", req, opts)
	fmt.Println(res.Reason)
	// Output:
	// true <nil>
	// false signature mismatch
	// missing header x-hub-signature-256
}

// A custom sender signing "<timestamp>.<body>" with HMAC-SHA256, hex, in
// X-Signature: "sha256=…".
func ExampleVerify_generic() {
	secret, body := []byte("s3cr3t-value"), []byte(`{"event":"ping"}`)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("1700000000." + string(body)))

	h := http.Header{}
	h.Set("X-Timestamp", "1700000000")
	h.Set("X-Signature", "sha256="+hex.EncodeToString(m.Sum(nil)))
	req := &webhook.Request{Header: headerMap(h), Body: body}
	opts := &webhook.Options{
		Secrets:   [][]byte{secret},
		Now:       time.Unix(1700000030, 0),
		SigHeader: "x-signature", Prefix: "sha256=", Template: "{timestamp}.{body}", TimestampHeader: "x-timestamp",
	}
	res, err := webhook.Verify("hmac", req, opts)
	fmt.Println(res.Valid, err)

	opts.Now = time.Unix(1700000301, 0)
	res, _ = webhook.Verify("hmac", req, opts)
	fmt.Println(res.Valid, res.Reason)
	// Output:
	// true <nil>
	// false timestamp outside tolerance
}
