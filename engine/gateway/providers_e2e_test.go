package gateway

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/vectors"
)

// The shipped provider library and ready route policies, copied into each test gateway's
// policy dir as they are (tests excluded).
var providerPolicyDirs = []string{"../../policies/hookwall/lib/providers", "../../policies/routes/providers"}

// providerDedupedOnReplay are the valid vectors that carry their provider's natural delivery
// key: replayed, they are answered as duplicates. The other valid vectors carry none (GitHub's
// without X-GitHub-Delivery, a Slack slash command, …), so a replay is forwarded again.
var providerDedupedOnReplay = map[string]bool{
	"stripe-dotnet-event_test_signature":   true, // body id
	"standard-webhooks-sign-vector":        true, // webhook-id
	"standard-webhooks-multi-sig-rotation": true,
	"svix-headers-sign-vector":             true, // svix-id
	"square-sdk-test-notification":         true, // body event_id
	"go-pagerduty-valid":                   true, // body event.id
	"go-pagerduty-rotation-list":           true,
	"sendgrid-eventwebhook-single":         true, // body hash
	"zoom-self-generated":                  true, // body hash
	"linear-self-generated":                true, // Linear-Delivery
}

func providerPolicyFiles(t *testing.T) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, dir := range providerPolicyDirs {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			name := e.Name()
			if e.IsDir() || !strings.HasSuffix(name, ".rego") || strings.HasSuffix(name, "_test.rego") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			files[filepath.Join("policies", strings.TrimPrefix(dir, "../../policies/"), name)] = string(b)
		}
	}
	if len(files) < 28 {
		t.Fatalf("found %d provider policy files", len(files))
	}
	return files
}

const providerE2EConfig = `
[server]
listen = "127.0.0.1:0"

[admin]
listen = "127.0.0.1:0"

[policies]
dir = "policies"
watch = false

[log]
decisions = "off"

[secrets]
%[1]s = {file = "%[1]s.secret"}

[[route]]
name = "%[1]s"
prefix = "/"
methods = ["POST"]
upstream = "%[2]s"
policy = "routes.providers.%[1]s"
`

// TestE2EProviderVectors sends every published vector through a real gateway route running the
// provider's ready policy (policies/routes/providers/<provider>.rego, unmodified), with the vector's
// secret under the provider's name and the signature clock at the vector's time. A valid
// vector is forwarded with its exact bytes and a 2xx; an invalid one gets 401 and never
// reaches the upstream. A valid vector is then replayed: with a natural delivery key it is
// answered as a duplicate and not forwarded, without one it is forwarded again.
//
// URL-signed vectors (Twilio, Square) arrive at the vector's path and query; the public base
// the provider signed is policy data (hookwall/config/data.json), as behind TLS termination.
func TestE2EProviderVectors(t *testing.T) {
	vs := vectors.Load(t)
	policies := providerPolicyFiles(t)
	for i := range vs {
		v := &vs[i]
		t.Run(v.Name, func(t *testing.T) {
			files := map[string]string{v.Scheme() + ".secret": v.Key()}
			for k, src := range policies {
				files[k] = src
			}
			path := "/hooks/" + v.Scheme()
			if v.URL != "" {
				scheme, rest, ok := strings.Cut(v.URL, "://")
				j := strings.IndexAny(rest, "/?")
				if !ok || j < 0 {
					t.Fatalf("vector url %q", v.URL)
				}
				base, uri := scheme+"://"+rest[:j], rest[j:]
				path = uri
				files["policies/hookwall/config/data.json"] = fmt.Sprintf(`{"public_url": %q}`, base)
			}
			up := startUpstream(t)
			now := time.Unix(v.Now, 0)
			e := startEnv(t, fmt.Sprintf(providerE2EConfig, v.Scheme(), up.URL()), files, Options{Now: func() time.Time { return now }})

			r := e.do("POST", path, []byte(v.Body), v.Headers)
			got := up.requests()
			switch v.Expect {
			case "valid":
				if r.Status < 200 || r.Status > 299 || r.Header.Get("Hookwall-Duplicate") != "" {
					t.Fatalf("valid vector: status %d, body %s", r.Status, r.Body)
				}
				if len(got) != 1 || !bytes.Equal(got[0].Body, []byte(v.Body)) || got[0].URI != path {
					t.Fatalf("upstream got %d requests (want the vector's exact body at %s)", len(got), path)
				}
			case "invalid":
				if r.Status != 401 || !strings.Contains(r.Body, "signature: ") {
					t.Fatalf("invalid vector: status %d, body %s; want 401 with the signature reason", r.Status, r.Body)
				}
				if len(got) != 0 {
					t.Fatalf("an invalid vector reached the upstream")
				}
				return
			default:
				t.Fatalf("unknown expect %q", v.Expect)
			}

			replay := e.do("POST", path, []byte(v.Body), v.Headers)
			n := len(up.requests())
			if providerDedupedOnReplay[v.Name] {
				if replay.Status != 200 || replay.Header.Get("Hookwall-Duplicate") != "true" || n != 1 {
					t.Fatalf("replay: status %d duplicate=%q, upstream saw %d; want 200 duplicate, not forwarded",
						replay.Status, replay.Header.Get("Hookwall-Duplicate"), n)
				}
			} else if replay.Status < 200 || replay.Status > 299 || replay.Header.Get("Hookwall-Duplicate") != "" || n != 2 {
				t.Fatalf("replay without a delivery key: status %d, upstream saw %d; want forwarded again", replay.Status, n)
			}
		})
	}
}
