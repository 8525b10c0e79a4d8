package policy

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/input"
)

// TestVerifyOptsFromTheRequest: opts built from the request (here the secret's name comes
// from a header, in a buffer the next request reuses) are looked up by value in the
// parsed-opts cache: each request verifies with the secret its own header names, never the
// one a previous request put in the cache, and past the cache's bound every opts still
// verifies.
func TestVerifyOptsFromTheRequest(t *testing.T) {
	secrets := secretMap{}
	for i := range optsCacheSize + 10 {
		secrets[fmt.Sprintf("s%d", i)] = []byte(fmt.Sprintf("secret-%d", i))
	}
	src := `package p
sig := hookwall.webhook.verify("github", input.request, {"secret": input.request.headers["x-secret-name"]})
allow if sig.valid
deny contains sig.reason if not sig.valid
`
	set, err := LoadModules(context.Background(), map[string]string{"p.rego": src}, nil, Options{Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	q := prepareCompiled(t, set, "p")
	var b input.Builder // one builder, reset between requests, as the server pools them
	body := `{"a":1}`
	check := func(name, signedWith string, want bool) {
		t.Helper()
		b.Reset()
		var req fasthttp.Request
		req.Header.SetMethod("POST")
		req.SetRequestURI("/")
		req.Header.Set("X-Secret-Name", name)
		req.Header.Set("X-Hub-Signature-256", "sha256="+hmacHex(signedWith, body))
		req.SetBodyString(body)
		m := input.Meta{ID: "id", Scheme: "http", RemoteIP: "192.0.2.1", ReceivedAt: time.Now()}
		doc := input.Document(b.Request(&req, &m), &m, nil)
		d, err := evalBoth(t, q, doc, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := d.Allow && !d.Denied(); got != want {
			t.Fatalf("secret %s, signed with %q: allowed %v, want %v (%+v)", name, signedWith, got, want, d)
		}
	}
	for range 2 {
		for i := range optsCacheSize + 10 {
			name := fmt.Sprintf("s%d", i)
			check(name, fmt.Sprintf("secret-%d", i), true)
			// The same buffers now name another secret: the request signed for s<i> fails.
			other := fmt.Sprintf("s%d", (i+1)%(optsCacheSize+10))
			check(other, fmt.Sprintf("secret-%d", i), false)
		}
	}
}

// rotatingSecrets is a secret source whose value can change between requests, as the
// [secrets] store's does when a file is rewritten or a vault lease renews.
type rotatingSecrets struct {
	mu  sync.Mutex
	val []byte
}

func (r *rotatingSecrets) Get(string) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.val, true
}

// rotatingVerify prepares verifyPolicy with a rotating secret source holding "first-secret".
func rotatingVerify(t *testing.T) (*rotatingSecrets, *Query) {
	t.Helper()
	src := &rotatingSecrets{val: []byte("first-secret")}
	set, err := LoadModules(context.Background(), map[string]string{"p.rego": verifyPolicy}, nil, Options{Secrets: src})
	if err != nil {
		t.Fatal(err)
	}
	return src, prepareCompiled(t, set, "routes.gh")
}

func (r *rotatingSecrets) set(b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.val = b
}

// TestVerifySecretsFollowTheSource: the secrets resolved for a cached opts object are reused
// only while the source hands out the same bytes: a rotated secret (a new slice, or the same
// slice rewritten in place) takes effect on the next request, and the old one stops working.
func TestVerifySecretsFollowTheSource(t *testing.T) {
	src, q := rotatingVerify(t)
	body := `{"a":1}`
	check := func(signedWith string, want bool) {
		t.Helper()
		req := requestValue("POST", "/", map[string]string{"X-Hub-Signature-256": "sha256=" + hmacHex(signedWith, body)}, body)
		d, err := evalBoth(t, q, doc(req), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Allow && !d.Denied(); got != want {
			t.Fatalf("signed with %q: allowed %v, want %v (%+v)", signedWith, got, want, d)
		}
	}
	check("first-secret", true)
	check("first-secret", true) // now from the cache
	src.set([]byte("second-secret"))
	check("first-secret", false)
	check("second-secret", true)
	check("second-secret", true)
	// Rewritten in place: same address, same length, other bytes.
	copy(src.val, "third-secret!")
	check("second-secret", false)
	check("third-secret!", true)
}
