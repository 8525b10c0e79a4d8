package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A Standard Webhooks delivery signed by the standard's own JavaScript library (npm
// standardwebhooks@1.1.1): new Webhook(stdPrefixSecret).sign("msg_acme_1",
// new Date(1700000000*1000), stdPrefixBody). The signature covers the id, the timestamp and the
// body, whatever header names carry them.
const (
	stdPrefixSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	stdPrefixBody   = `{"type":"invoice.paid","amount":100}`
	stdPrefixSig    = "v1,vRSHIuOISfhGIqJ8OtY5OF3nZl4Po7g9gSnJkOFyPPg="
	stdPrefixTime   = 1700000000
)

// TestStandardPrefixDedupeKeysTheVerifiedID: a sender with header names of its own
// (acme-webhook-*), and Svix's svix-* named as the prefix, verified with the provider
// library's verify_with and keyed with its dedupe_of. The captured delivery is forwarded once;
// replayed as captured, and again with a fresh unsigned webhook-id (the header the library's
// dedupe_key would read), it is a duplicate: the key is the id the signature covers.
func TestStandardPrefixDedupeKeysTheVerifiedID(t *testing.T) {
	for _, c := range []struct{ lib, prefix string }{{"standard", "acme-webhook-"}, {"svix", "svix-"}} {
		t.Run(c.lib+" "+c.prefix, func(t *testing.T) {
			files := providerPolicyFiles(t)
			files["acme.secret"] = stdPrefixSecret
			files["policies/routes/acme.rego"] = fmt.Sprintf(`package routes.acme

import data.hookwall.lib.providers.%[1]s

default allow := false

sig := %[1]s.verify_with("acme", {"prefix": %[2]q})

allow if sig.valid

status := 401 if not sig.valid

dedupe := %[1]s.dedupe_of(sig)
`, c.lib, c.prefix)
			up := startUpstream(t)
			now := time.Unix(stdPrefixTime, 0)
			e := startEnv(t, fmt.Sprintf(providerE2EConfig, "acme", up.URL(), "routes.acme"), files, Options{Now: func() time.Time { return now }})
			captured := map[string]string{c.prefix + "id": "msg_acme_1", c.prefix + "timestamp": fmt.Sprint(stdPrefixTime), c.prefix + "signature": stdPrefixSig}
			if r := e.do("POST", "/hooks/acme", []byte(stdPrefixBody), captured); r.Status != 200 || len(up.requests()) != 1 {
				t.Fatalf("the delivery: status %d %s, upstream saw %d", r.Status, r.Body, len(up.requests()))
			}
			wantDuplicate(t, e.do("POST", "/hooks/acme", []byte(stdPrefixBody), captured), up)
			for _, fresh := range []string{"fresh-unsigned-1", "fresh-unsigned-2"} {
				replay := maps.Clone(captured)
				replay["webhook-id"] = fresh
				wantDuplicate(t, e.do("POST", "/hooks/acme", []byte(stdPrefixBody), replay), up)
			}
		})
	}
}

// TestCredentialMaskedWhenThePolicyDecidesFirst: a policy that checks the content type before
// hookwall.apikey.verify, or the method before a generic hmac check, never hands the
// credential to the builtin when the first check fails. The credential's header is named in
// the policy, so the decision log masks it all the same, on the compiled evaluator and on
// topdown, right key or not; an unrelated header stays as sent.
func TestCredentialMaskedWhenThePolicyDecidesFirst(t *testing.T) {
	const key = "k3y-0f-the-acme-c1ient-4ab9f0e2"
	const mac = "9f2c1e7a4b3d5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8091a2b3c4d5e6f7"
	sum := sha256.Sum256([]byte(key))
	for _, opaOnly := range []bool{false, true} {
		name := map[bool]string{false: "compiled", true: "topdown"}[opaOnly]
		t.Run(name, func(t *testing.T) {
			up := startUpstream(t)
			cfg := strings.ReplaceAll(credentialRoutesConfig(opaOnly), "{{UPSTREAM}}", up.URL())
			files := map[string]string{
				"keys.secret": "sha256:" + hex.EncodeToString(sum[:]) + "\n",
				"hmac.secret": "acme-hmac-secret",
				"policies/key.rego": `package routes.key

default allow := false

allow if {
	input.request.headers["content-type"] == "application/json"
	hookwall.apikey.verify(input.request.headers["x-acme-client"], "acme_keys")
}
`,
				"policies/sig.rego": `package routes.sig

default allow := false

allow if {
	input.request.method == "PUT"
	hookwall.webhook.verify("hmac", input.request, {"secret": "acme_hmac", "header": "X-Acme-Mac"}).valid
}
`,
			}
			e := startEnv(t, cfg, files, Options{Logger: discardLogger()})
			if st := postHeaders(t, e.base+"/hooks/key", "{}", http.Header{"X-Acme-Client": {key}, "Content-Type": {"application/json"}}); st != 200 {
				t.Fatalf("the right key as JSON: status %d", st)
			}
			if st := postHeaders(t, e.base+"/hooks/key", "{}", http.Header{"X-Acme-Client": {key}, "Content-Type": {"text/plain"}, "X-Note": {"plain"}}); st != 403 {
				t.Fatalf("the right key as text/plain: status %d, want 403 before the key is checked", st)
			}
			if st := postHeaders(t, e.base+"/hooks/sig", "{}", http.Header{"X-Acme-Mac": {mac}}); st != 403 {
				t.Fatalf("a POST to the PUT-only hmac route: status %d, want 403", st)
			}
			raw, lines := stopAndReadLog(t, e)
			for _, v := range []string{key, mac} {
				if strings.Contains(string(raw), v) {
					t.Errorf("the decision log holds the credential %q:\n%s", v, raw)
				}
			}
			if len(lines) != 3 {
				t.Fatalf("%d records, want 3:\n%s", len(lines), raw)
			}
			if !strings.Contains(string(lines[1]), `"X-Note":"plain"`) {
				t.Errorf("an unrelated header was masked too:\n%s", lines[1])
			}
		})
	}
}
