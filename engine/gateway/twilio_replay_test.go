package gateway

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestE2ETwilioReshapedFormIsAReplay: a captured Twilio form delivery (the published vector),
// sent again with the same signature and its form body reshaped in ways the signature does
// not see (a trailing "&", the pairs reordered, a pair repeated, a byte percent-encoded, a
// byte moved across a pair's "="),
// still verifies, and is answered as the duplicate it is: Twilio signs no timestamp, so the
// ready policy's dedupe key is the only replay protection, and it is a digest of what is
// signed, not of the body's bytes.
func TestE2ETwilioReshapedFormIsAReplay(t *testing.T) {
	v := vectorNamed(t, "twilio-python-form")
	e, up, path := startProviderRoute(t, v, providerPolicyFiles(t))
	h := maps.Clone(v.Headers)
	if r := e.do("POST", path, []byte(v.Body), h); r.Status != 200 || len(up.requests()) != 1 {
		t.Fatalf("first delivery: status %d %s, upstream saw %d", r.Status, r.Body, len(up.requests()))
	}
	pairs := strings.Split(v.Body, "&")
	rev := slices.Clone(pairs)
	slices.Reverse(rev)
	for _, c := range []struct{ name, body string }{
		{"as captured", v.Body},
		{"trailing ampersand", v.Body + "&"},
		{"pairs reordered", strings.Join(rev, "&")},
		{"a pair repeated", v.Body + "&" + pairs[0]},
		{"percent-encoded byte", strings.Replace(v.Body, "Digits=1234", "Digits=%31234", 1)},
		// The signature joins a pair's name and value with nothing between.
		{"a byte moved across =", strings.Replace(v.Body, "Digits=1234", "Digits1=234", 1)},
		{"no =", strings.Replace(v.Body, "Digits=1234", "Digits1234", 1)},
	} {
		before := len(up.requests())
		r := e.do("POST", path, []byte(c.body), h)
		forwarded := len(up.requests()) - before
		if forwarded != 0 || r.Status != 200 || r.Header.Get("Hookwall-Duplicate") != "true" {
			t.Errorf("replay %q of a captured Twilio delivery: status %d, Hookwall-Duplicate %q, forwarded %d; want 200, true, 0", c.name, r.Status, r.Header.Get("Hookwall-Duplicate"), forwarded)
		}
	}
}
