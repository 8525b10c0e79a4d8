package policy

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"
)

// standardSigned returns the Standard Webhooks headers, under prefix, of a message id signed
// with key at ts over body.
func standardSigned(key []byte, prefix, id string, ts int64, body string) map[string]string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.%s", id, ts, body)
	return map[string]string{
		prefix + "id":        id,
		prefix + "timestamp": strconv.FormatInt(ts, 10),
		prefix + "signature": "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil)),
	}
}

// TestStandardKeyIsTheVerifiedID holds the library's Standard Webhooks keys to the id the
// builtin verified, on the compiled evaluator and on topdown. A delivery signed under
// webhook-, svix- or a sender's own prefix arrives with the other family's headers added in
// every way a replayer might (empty, a fresh id, a whole forged set):
//   - whatever verify allows, dedupe_key_of(result) is the signed id;
//   - verify without a prefix allows only requests whose header-read dedupe_key is that id
//     too (the library's choice of header is the verifier's);
//   - verify_with under a prefix allows the added fresh id, which dedupe_key would take as the
//     key: only dedupe_key_of keys it right.
func TestStandardKeyIsTheVerifiedID(t *testing.T) {
	key := []byte("a-standard-webhooks-key-0123456789")
	now := time.Unix(1700000000, 0)
	src := fastpathRegoFiles(t, "../../policies/hookwall/lib/providers")
	for name, opts := range map[string]string{"none": "{}", "svix": `{"prefix": "svix-"}`, "acme": `{"prefix": "acme-webhook-"}`} {
		src["routes/"+name+".rego"] = `package routes.` + name + `

import data.hookwall.lib.providers.standard

sig := standard.verify_with("std", ` + opts + `)

allow if sig.valid

labels["verified"] := standard.dedupe_key_of(sig)

labels["header"] := k if {
	sig.valid
	k := standard.dedupe_key_with_header
}
`
	}
	// A route may not refer to dedupe_key beside a prefix (TestHeaderKeyBesideAPrefixIsRefused):
	// the test reaches it through a package of its own, which the check does not follow.
	src["lib/probe.rego"] = "package hookwall.lib.providers.standard\n\ndedupe_key_with_header := dedupe_key\n"
	set, err := LoadModules(context.Background(), src, nil, Options{
		Secrets: secretMap{"std": []byte("whsec_" + base64.StdEncoding.EncodeToString(key))},
		Now:     func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	const body = `{"type":"invoice.paid"}`
	const signedID = "msg_signed"
	extras := map[string]map[string]string{
		"as signed":               nil,
		"empty id":                {"id": ""},
		"fresh id":                {"id": "msg_fresh"},
		"fresh id and timestamp":  {"id": "msg_fresh", "timestamp": strconv.FormatInt(now.Unix(), 10)},
		"forged set":              {"id": "msg_fresh", "timestamp": strconv.FormatInt(now.Unix(), 10), "signature": "v1,AAAA"},
		"empty id, signature set": {"id": "", "signature": "v1,AAAA"},
	}
	allowed := map[string]int{}
	for _, signedAs := range []string{"webhook-", "svix-", "acme-webhook-"} {
		for _, other := range []string{"webhook-", "svix-"} {
			if other == signedAs {
				continue
			}
			for ename, extra := range extras {
				headers := standardSigned(key, signedAs, signedID, now.Unix(), body)
				for k, v := range extra {
					headers[other+k] = v
				}
				for _, route := range []string{"none", "svix", "acme"} {
					t.Run(strings.Join([]string{signedAs, other + ename, route}, "/"), func(t *testing.T) {
						q := prepareCompiled(t, set, "routes."+route)
						d, err := evalBoth(t, q, doc(requestValue("POST", "/", maps.Clone(headers), body)), nil)
						if err != nil {
							t.Fatal(err)
						}
						if !d.Allow {
							return
						}
						allowed[route]++
						if got := d.Labels["verified"]; got != "standard:"+signedID {
							t.Errorf("allowed with dedupe_key_of %v, want the signed id", got)
						}
						if route == "none" && d.Labels["header"] != "standard:"+signedID {
							t.Errorf("verify without a prefix allowed it, and dedupe_key is %v: the library reads another header than the verifier", d.Labels["header"])
						}
					})
				}
			}
		}
	}
	// Each route allows what is signed under its headers, whatever was added beside, but
	// without a prefix a svix- delivery beside any webhook- header other than an empty id: the
	// verifier then reads the webhook- headers.
	for route, want := range map[string]int{"none": len(extras) + 2, "svix": len(extras), "acme": 2 * len(extras)} {
		if allowed[route] != want {
			t.Errorf("route %s allowed %d requests, want %d", route, allowed[route], want)
		}
	}
}

// TestHeaderKeyBesideAPrefixIsRefused: a package that verifies Standard Webhooks under a
// header prefix of its own and keys with the library's dedupe, dedupe_key or message_id (which
// read webhook-id or svix-id) fails the load, naming the reference, the prefix and the fix.
// The default prefix, no prefix, and dedupe_of are accepted.
func TestHeaderKeyBesideAPrefixIsRefused(t *testing.T) {
	route := func(lib, body string) string {
		return "package routes.acme\n\nimport data.hookwall.lib.providers." + lib + "\n\ndefault allow := false\n\n" + body
	}
	cases := []struct{ name, policy, want string }{
		{"the library's dedupe beside a sender's prefix", route("standard", `sig := standard.verify_with("acme", {"prefix": "acme-webhook-"})

allow if sig.valid

dedupe := standard.dedupe if sig.valid
`), `routes/acme.rego:11: data.hookwall.lib.providers.standard.dedupe reads the message id from webhook-id or svix-id, but routes.acme verifies under opts.prefix "acme-webhook-" (routes/acme.rego:7)`},
		{"svix's dedupe beside the svix- prefix", route("svix", `sig := svix.verify_with("acme", {"prefix": "svix-"})

allow if sig.valid

dedupe := svix.dedupe if sig.valid
`), `data.hookwall.lib.providers.svix.dedupe reads the message id from webhook-id or svix-id, but routes.acme verifies under opts.prefix "svix-"`},
		{"dedupe_key, the builtin called directly, options in a variable", route("standard", `allow if {
	opts := {"secret": "acme", "prefix": "Acme-"}
	hookwall.webhook.verify("standard", input.request, opts).valid
}

dedupe := {"key": standard.dedupe_key, "ttl": "1h"}
`), `data.hookwall.lib.providers.standard.dedupe_key reads the message id`},
		{"the library's generic verify under a prefix", "package routes.acme\n\nimport data.hookwall.lib.providers\nimport data.hookwall.lib.providers.standard\n\ndefault allow := false\n\n" + `sig := providers.verify("standard", "acme", {"prefix": "acme-webhook-"})

allow if sig.valid

dedupe := standard.dedupe if sig.valid
`, `data.hookwall.lib.providers.standard.dedupe reads the message id from webhook-id or svix-id, but routes.acme verifies under opts.prefix "acme-webhook-"`},
		{"the fix is named", route("standard", `sig := standard.verify_with("acme", {"prefix": "acme-webhook-"})

allow if sig.valid

dedupe := standard.dedupe if sig.valid
`), `key on the id the check verified: dedupe := standard.dedupe_of(sig)`},
		{"dedupe_of beside a prefix", route("standard", `sig := standard.verify_with("acme", {"prefix": "acme-webhook-"})

allow if sig.valid

dedupe := standard.dedupe_of(sig)
`), ""},
		{"the library's dedupe without a prefix", route("standard", `sig := standard.verify_with("acme", {"tolerance": "1m"})

allow if sig.valid

dedupe := standard.dedupe if sig.valid
`), ""},
		{"the library's dedupe with the default prefix", route("standard", `sig := standard.verify_with("acme", {"prefix": "webhook-"})

allow if sig.valid

dedupe := standard.dedupe if sig.valid
`), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := fastpathRegoFiles(t, "../../policies/hookwall/lib/providers")
			src["routes/acme.rego"] = c.policy
			_, err := LoadModules(context.Background(), src, nil, Options{})
			if c.want == "" {
				if err != nil {
					t.Fatalf("want it loaded: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant it to contain %s", err, c.want)
			}
		})
	}
}
