package policy

import (
	"context"
	"sort"
	"strings"
	"testing"
)

// namedSecrets is a secret source that lists its names, as [secrets] does, so a message can
// suggest the nearest one.
type namedSecrets map[string][]byte

func (s namedSecrets) Get(name string) ([]byte, bool) { v, ok := s[name]; return v, ok }

func (s namedSecrets) Names() []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestCheckCallsAtLoad: each mistake in a constant argument of a hookwall builtin fails the
// load (or, for a secret name, the preparation of the route's package) with the file, the
// line of the call and a message that names what is wrong, instead of failing every request.
func TestCheckCallsAtLoad(t *testing.T) {
	secrets := namedSecrets{"github": []byte("s"), "partner_keys": []byte("sha256:" + strings.Repeat("0", 64))}
	hmac := func(opts string) string {
		return "package p\n\nallow if {\n\thookwall.webhook.verify(\"hmac\", input.request, " + opts + ").valid\n}\n"
	}
	cases := []struct {
		name, policy string
		want         string // "" loads and prepares
		atPrepare    bool
	}{
		{"valid github", "package p\n\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"github\"}).valid\n", "", false},
		{"valid stripe tolerance", "package p\n\nallow if hookwall.webhook.verify(\"stripe\", input.request, {\"secret\": \"github\", \"tolerance\": \"5m\"}).valid\n", "", false},
		{"tolerance for a scheme that signs no time", "package p\n\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"github\", \"tolerance\": \"5m\"}).valid\n",
			`p.rego:3: hookwall.webhook.verify: webhook/github: opts.tolerance bounds nothing: the scheme signs no time (a dedupe key stops its replays)`, false},
		{"an hmac option for a named scheme", "package p\n\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"github\", \"header\": \"X-Sig\"}).valid\n",
			`p.rego:3: hookwall.webhook.verify: webhook/github: opts.header is not read by this scheme: only "hmac" reads it (github reads what its provider sends)`, false},
		{"a url for a scheme that signs none", "package p\n\nallow if hookwall.webhook.verify(\"stripe\", input.request, {\"secret\": \"github\", \"url\": \"https://hooks.example\"}).valid\n",
			`p.rego:3: hookwall.webhook.verify: webhook/stripe: opts.url is not read by this scheme: it signs no URL (twilio and square do)`, false},
		{"a url for twilio", "package p\n\nallow if hookwall.webhook.verify(\"twilio\", input.request, {\"secret\": \"github\", \"url\": \"https://hooks.example\"}).valid\n", "", false},
		{"valid hmac", hmac(`{"secret": "github", "header": "X-Sig", "algorithm": "sha512", "encoding": "base64", "template": "{timestamp}.{body}", "timestamp_header": "X-Ts"}`), "", false},
		{"wrong scheme name", "package p\n\nallow if hookwall.webhook.verify(\"githb\", input.request, {\"secret\": \"github\"}).valid\n",
			`p.rego:3: hookwall.webhook.verify: unknown scheme "githb" (did you mean "github"?)`, false},
		{"misspelt option", "package p\n\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"github\", \"tolerence\": \"5m\"}).valid\n",
			`p.rego:3: hookwall.webhook.verify: unknown opts key "tolerence" (did you mean "tolerance"?)`, false},
		{"duration in words", "package p\n\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"github\", \"tolerance\": \"5 minutes\"}).valid\n",
			`p.rego:3: hookwall.webhook.verify: opts.tolerance: invalid duration "5 minutes"`, false},
		{"algorithm in capitals", hmac(`{"secret": "github", "header": "X-Sig", "algorithm": "SHA256"}`),
			`p.rego:4: hookwall.webhook.verify: webhook/hmac: algorithm must be sha1, sha256 or sha512, not "SHA256"`, false},
		{"unknown encoding", hmac(`{"secret": "github", "header": "X-Sig", "encoding": "base32"}`),
			`encoding must be hex or base64, not "base32"`, false},
		{"missing header", hmac(`{"secret": "github"}`), `p.rego:4: hookwall.webhook.verify: webhook/hmac: the header option`, false},
		{"template that does not sign the body", hmac(`{"secret": "github", "header": "X-Sig", "template": "{timestamp}", "timestamp_header": "X-Ts"}`),
			`template must sign {body}`, false},
		{"timestamp header the template does not sign", hmac(`{"secret": "github", "header": "X-Sig", "timestamp_header": "X-Ts"}`),
			`does not sign {timestamp}`, false},
		{"id header the template does not sign", hmac(`{"secret": "github", "header": "X-Sig", "id_header": "X-Delivery-Id"}`),
			`p.rego:4: hookwall.webhook.verify: webhook/hmac: opts.id_header is set but the template does not sign {id}`, false},
		{"id header the template signs", hmac(`{"secret": "github", "header": "X-Sig", "template": "{id}.{body}", "id_header": "X-Delivery-Id"}`), "", false},
		{"option of the wrong type", "package p\n\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"github\", \"url\": 8080}).valid\n",
			`opts.url must be a string`, false},
		{"unknown secret name", "package p\n\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": [\"github\", \"githb\"]}).valid\n",
			`p.rego:3: hookwall.webhook.verify: opts.secret: no secret named "githb" in [secrets] (did you mean "github"?)`, true},
		{"unknown api key list", "package p\n\nallow if hookwall.apikey.verify(input.request.headers[\"x-api-key\"], \"partner-keys\")\n",
			`p.rego:3: hookwall.apikey.verify: secret: no secret named "partner-keys" in [secrets] (did you mean "partner_keys"?)`, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			set, err := LoadModules(context.Background(), map[string]string{"p.rego": c.policy}, nil, Options{Secrets: secrets})
			if err == nil {
				_, err = set.Prepare(context.Background(), "p")
				if err != nil && !c.atPrepare {
					t.Fatalf("load passed and prepare failed: %v", err)
				}
			} else if c.atPrepare {
				t.Fatalf("load failed, want the failure at prepare: %v", err)
			}
			if c.want == "" {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant it to contain %s", err, c.want)
			}
		})
	}
}

// TestCheckSecretsFollowsRoutes: a secret name is checked where a served package, or a package
// it uses, names it; a package no route serves and a test file may name secrets the config
// does not have (a library ships policies for every provider).
func TestCheckSecretsFollowsRoutes(t *testing.T) {
	mods := map[string]string{
		"lib/acme.rego":      "package lib.acme\n\nok if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"acme\"}).valid\n",
		"routes/a.rego":      "package routes.a\n\nimport data.lib.acme\n\nallow if acme.ok\n",
		"routes/b.rego":      "package routes.b\n\nallow if hookwall.webhook.verify(\"github\", input.request, {\"secret\": \"github\"}).valid\n",
		"routes/b_test.rego": "package routes.b_test\n\ntest_x if hookwall.webhook.verify(\"github\", {}, {\"secret\": \"only-in-tests\"}).valid\n",
	}
	set, err := LoadModules(context.Background(), mods, nil, Options{Secrets: namedSecrets{"github": []byte("s")}, IncludeTests: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := set.Prepare(context.Background(), "routes.b"); err != nil {
		t.Fatalf("routes.b names only configured secrets: %v", err)
	}
	_, err = set.Prepare(context.Background(), "routes.a")
	if err == nil || !strings.Contains(err.Error(), `lib/acme.rego:3: hookwall.webhook.verify: opts.secret: no secret named "acme"`) {
		t.Fatalf("routes.a uses lib.acme, which names a missing secret: err = %v", err)
	}
}
