package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// pathKey is an API key a client sends as the last segment of a prefix route's path.
const pathKey = "k3y-0f-the-acme-c1ient-4ab9f0e2"

// pathKeyFiles are the secret holding pathKey's hash and a policy routes.inpath that reads
// the key from the path.
func pathKeyFiles() map[string]string {
	sum := sha256.Sum256([]byte(pathKey))
	return map[string]string{
		"keys.secret": "sha256:" + hex.EncodeToString(sum[:]) + "\n",
		"policies/inpath.rego": `package routes.inpath

allow if hookwall.apikey.verify(trim_prefix(input.request.path, "/hooks/tg/"), "acme_keys")
`,
	}
}

// A queued prefix route whose API key is the path's last segment: the request's record
// masks it in request.path; the delivery's final record ("delivered") and the admin
// listing must too, while the upstream gets the real path.
func TestSensitiveQueuedDeliveryRecordMasksPathCredential(t *testing.T) {
	up := startUpstream(t)
	cfg := loggingHead() + `
[secrets]
acme_keys = {file = "keys.secret"}

[[route]]
name = "inpath"
prefix = "/hooks/tg/"
upstream = "{{UPSTREAM}}"
policy = "routes.inpath"
delivery = "queued"
`
	cfg = strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL())
	e := startEnv(t, cfg, pathKeyFiles(), Options{Logger: discardLogger()})
	r := e.do("POST", "/hooks/tg/"+pathKey, []byte(`{"event":"ping"}`), nil)
	if r.Status != 202 {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
	testutil.WaitFor(t, func() bool { return len(up.requests()) == 1 })
	if got := up.requests()[0].URI; !strings.HasSuffix(got, "/hooks/tg/"+pathKey) {
		t.Errorf("the upstream got path %q, want the key in it", got)
	}
	var listing []byte
	testutil.WaitFor(t, func() bool {
		resp, err := client.Get(e.admin + "/-/deliveries?state=delivered")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		listing, _ = io.ReadAll(resp.Body)
		return bytes.Contains(listing, []byte(`"inpath"`))
	})
	if bytes.Contains(listing, []byte(pathKey)) {
		t.Errorf("/-/deliveries holds the API key:\n%s", listing)
	}
	if !bytes.Contains(listing, []byte(`"/hooks/tg/***"`)) {
		t.Errorf("/-/deliveries does not show the masked path:\n%s", listing)
	}
	time.Sleep(300 * time.Millisecond) // the delivered record is written after the attempt
	raw, lines := stopAndReadLog(t, e)
	noKeyIn(t, lines)
	if !bytes.Contains(raw, []byte(`"delivered"`)) {
		t.Errorf("no delivered record:\n%s", raw)
	}
}

// noKeyIn fails for each record that holds pathKey or lacks one of want.
func noKeyIn(t *testing.T, lines [][]byte, want ...string) {
	t.Helper()
	for i, l := range lines {
		if bytes.Contains(l, []byte(pathKey)) {
			t.Errorf("record %d holds the API key:\n%s", i, l)
		}
		for _, w := range want {
			if !bytes.Contains(l, []byte(w)) {
				t.Errorf("record %d lacks %s:\n%s", i, w, l)
			}
		}
	}
}

// The route's policy hands X-Acme-Client to hookwall.apikey.verify, so the log masks it on
// every request the policy evaluates; a request a filter refuses first carries the same key,
// and its record masks it too.
func TestSensitiveCredentialHeaderMaskedWhenAFilterRefuses(t *testing.T) {
	sum := sha256.Sum256([]byte(pathKey))
	wasm, err := os.ReadFile(filepath.Join("testdata", "denyheader.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	up := startUpstream(t)
	cfg := loggingHead() + `
[secrets]
acme_keys = {file = "keys.secret"}

[[filter]]
name = "guard"
module = "{{DIR}}/filters/denyheader.wasm"

[[route]]
name = "key"
path = "/hooks/key"
upstream = "{{UPSTREAM}}"
policy = "routes.key"
filters = ["guard"]
`
	cfg = strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL())
	files := map[string]string{
		"keys.secret":             "sha256:" + hex.EncodeToString(sum[:]) + "\n",
		"filters/denyheader.wasm": string(wasm),
		"policies/key.rego": `package routes.key

allow if hookwall.apikey.verify(input.request.headers["x-acme-client"], "acme_keys")
`,
	}
	e := startEnv(t, cfg, files, Options{Logger: discardLogger()})
	if r := e.do("POST", "/hooks/key", []byte(`{}`), map[string]string{"X-Acme-Client": pathKey}); r.Status != 200 {
		t.Fatalf("policy path: status %d %s", r.Status, r.Body)
	}
	if r := e.do("POST", "/hooks/key", []byte(`{}`), map[string]string{"X-Acme-Client": pathKey, "X-Deny": "1"}); r.Status != 403 {
		t.Fatalf("filter path: status %d %s", r.Status, r.Body)
	}
	_, lines := stopAndReadLog(t, e)
	if len(lines) != 2 {
		t.Fatalf("%d records, want 2", len(lines))
	}
	noKeyIn(t, lines, `"/request/headers/X-Acme-Client"`) // listed as masked
}

// A prefix route whose key is the path's last segment: a request over max_body is refused
// before the route is known or the policy runs, and its record masks the path by the route's
// rule; one a filter-less policy never sees (a method the route refuses) too.
func TestSensitivePathCredentialMaskedOn413(t *testing.T) {
	up := startUpstream(t)
	cfg := strings.Replace(loggingHead(), `listen = "127.0.0.1:0"`, "listen = \"127.0.0.1:0\"\nmax_body = \"64B\"", 1) + `
[secrets]
acme_keys = {file = "keys.secret"}

[[route]]
name = "inpath"
prefix = "/hooks/tg/"
upstream = "{{UPSTREAM}}"
policy = "routes.inpath"
methods = ["POST"]
`
	cfg = strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL())
	e := startEnv(t, cfg, pathKeyFiles(), Options{Logger: discardLogger()})
	if r := e.do("POST", "/hooks/tg/"+pathKey, []byte(`{}`), nil); r.Status != 200 {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
	if r := e.do("POST", "/hooks/tg/"+pathKey, []byte(strings.Repeat("x", 100)), nil); r.Status != 413 {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
	if r := e.do("PUT", "/hooks/tg/"+pathKey, []byte(`{}`), nil); r.Status != 405 {
		t.Fatalf("status %d %s", r.Status, r.Body)
	}
	_, lines := stopAndReadLog(t, e)
	if len(lines) != 3 {
		t.Fatalf("%d records, want 3", len(lines))
	}
	noKeyIn(t, lines, `"path":"/hooks/tg/***"`, `"/request/path"`)
}
