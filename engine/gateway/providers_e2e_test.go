package gateway

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/vectors"
)

// The shipped provider library and ready route policies, copied into each test gateway's
// policy dir as they are (tests excluded).
var providerPolicyDirs = []string{"../../policies/hookwall/lib/providers", "../../policies/routes/providers"}

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
policy = "%[3]s"
`

// TestE2EProviderVectors sends every published vector through a real gateway route running the
// provider's ready policy (policies/routes/providers/<provider>.rego, unmodified), with the vector's
// secret under the provider's name and the signature clock at the vector's time. A valid
// vector is forwarded with its exact bytes and a 2xx; an invalid one gets 401 and never
// reaches the upstream. A valid vector is then replayed: every ready policy keys a verified
// delivery on what its provider signs, so the replay is answered as a duplicate and not
// forwarded.
//
// URL-signed vectors (Twilio, Square) arrive at the vector's path and query; the public base
// the provider signed is policy data (hookwall/config/data.json), as behind TLS termination.
func TestE2EProviderVectors(t *testing.T) {
	vs := vectors.Load(t)
	policies := providerPolicyFiles(t)
	for i := range vs {
		v := &vs[i]
		t.Run(v.Name, func(t *testing.T) {
			e, up, path := startProviderRoute(t, v, policies)
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

			wantDuplicate(t, e.do("POST", path, []byte(v.Body), v.Headers), up)
		})
	}
}

// startProviderRoute starts a gateway with the shipped provider policies and one route for
// v's provider running its ready policy, with v's secret and the signature clock at v's time,
// and returns it, its upstream and the path to post v to.
func startProviderRoute(t *testing.T, v *vectors.Vector, policies map[string]string) (*env, *upstream, string) {
	t.Helper()
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
	e := startEnv(t, fmt.Sprintf(providerE2EConfig, v.Scheme(), up.URL(), "routes.providers."+v.Scheme()), files, Options{Now: func() time.Time { return now }})
	return e, up, path
}

// wantDuplicate checks that a replay of the one delivery the upstream received is answered
// as a duplicate (200, Hookwall-Duplicate: true) and not forwarded.
func wantDuplicate(t *testing.T, replay resp, up *upstream) {
	t.Helper()
	if n := len(up.requests()); replay.Status != 200 || replay.Header.Get("Hookwall-Duplicate") != "true" || n != 1 {
		t.Fatalf("replay: status %d duplicate=%q, upstream saw %d; want 200 duplicate, not forwarded",
			replay.Status, replay.Header.Get("Hookwall-Duplicate"), n)
	}
}

// TestE2EReplayWithAFreshUnsignedID: a captured delivery replayed with a fresh value in a
// header its provider does not sign (a new X-GitHub-Delivery, a new X-Shopify-Event-Id, an
// empty webhook-id beside Svix's signed svix-id, …) still verifies, and is answered as a
// duplicate, not forwarded: the ready policies key deliveries on what the provider signs.
func TestE2EReplayWithAFreshUnsignedID(t *testing.T) {
	byName := map[string]*vectors.Vector{}
	vs := vectors.Load(t)
	for i := range vs {
		byName[vs[i].Name] = &vs[i]
	}
	policies := providerPolicyFiles(t)
	for _, c := range []struct {
		vector, header string
		first, replay  string
	}{
		{"github-docs-hello-world", "X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958", "a-fresh-guid"},
		{"go-shopify-my-secret-message", "X-Shopify-Event-Id", "98880550-7158-44d4-b7cd-2c97c8a091b5", "a-fresh-id"},
		{"linear-self-generated", "Linear-Delivery", "d1", "a-fresh-id"},
		{"twilio-python-form", "I-Twilio-Idempotency-Token", "ab12cd34", "a-fresh-token"},
		// Svix signs svix-id; verify reads the svix- headers while the webhook- ones are empty,
		// so an empty webhook-id must not become the key (or leave the delivery unkeyed).
		{"svix-headers-sign-vector", "Webhook-Id", "", ""},
	} {
		t.Run(c.vector, func(t *testing.T) {
			v, ok := byName[c.vector]
			if !ok {
				t.Fatalf("vector %s not found", c.vector)
			}
			e, up, path := startProviderRoute(t, v, policies)
			send := func(id string) resp {
				h := maps.Clone(v.Headers)
				h[c.header] = id
				return e.do("POST", path, []byte(v.Body), h)
			}
			if r := send(c.first); r.Status < 200 || r.Status > 299 || len(up.requests()) != 1 {
				t.Fatalf("first delivery: status %d %s, upstream saw %d", r.Status, r.Body, len(up.requests()))
			}
			wantDuplicate(t, send(c.replay), up)
		})
	}
}

// TestE2EReplayOfASignedID: Standard Webhooks signs its message id, which keys the delivery. A
// captured delivery replayed with a fresh webhook-id no longer verifies (401); replayed as
// captured, it is a duplicate. Neither reaches the upstream.
func TestE2EReplayOfASignedID(t *testing.T) {
	v := vectorNamed(t, "standard-webhooks-sign-vector")
	e, up, path := startProviderRoute(t, v, providerPolicyFiles(t))
	if r := e.do("POST", path, []byte(v.Body), v.Headers); r.Status < 200 || r.Status > 299 {
		t.Fatalf("first delivery: status %d %s", r.Status, r.Body)
	}
	fresh := maps.Clone(v.Headers)
	fresh["webhook-id"] = "msg_fresh"
	if r := e.do("POST", path, []byte(v.Body), fresh); r.Status != 401 || !strings.Contains(r.Body, "signature mismatch") {
		t.Fatalf("replay with a fresh webhook-id: status %d %s; want 401 signature mismatch", r.Status, r.Body)
	}
	wantDuplicate(t, e.do("POST", path, []byte(v.Body), v.Headers), up)
}

// TestE2EDemoRouteReplayWithAFreshDelivery: the default gateway's demo policy, as shipped, keys
// deliveries on the signed body too, so a captured push replayed with a fresh
// X-GitHub-Delivery is a duplicate and not forwarded.
func TestE2EDemoRouteReplayWithAFreshDelivery(t *testing.T) {
	up := startUpstream(t)
	e := startEnv(t, fmt.Sprintf(providerE2EConfig, "github", up.URL(), "routes.github"), map[string]string{
		"github.secret":               "demo-secret",
		"policies/routes/github.rego": secShipped(t, "policies/routes/github.rego"),
	}, Options{})
	body := []byte(`{"ref":"refs/heads/main"}`)
	send := func(delivery string) resp {
		return e.do("POST", "/hooks/github", body, map[string]string{
			"X-Hub-Signature-256": githubSig("demo-secret", body),
			"X-GitHub-Event":      "push",
			"X-GitHub-Delivery":   delivery,
		})
	}
	if r := send("72d3162e-cc78-11e3-81ab-4c9367dc0958"); r.Status != 200 || len(up.requests()) != 1 {
		t.Fatalf("first delivery: status %d %s, upstream saw %d", r.Status, r.Body, len(up.requests()))
	}
	wantDuplicate(t, send("a-fresh-guid"), up)
}

// vectorNamed is the published vector of that name.
func vectorNamed(t *testing.T, name string) *vectors.Vector {
	t.Helper()
	vs := vectors.Load(t)
	i := slices.IndexFunc(vs, func(v vectors.Vector) bool { return v.Name == name })
	if i < 0 {
		t.Fatalf("vector %s not found", name)
	}
	return &vs[i]
}
