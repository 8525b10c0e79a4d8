package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2ECredentialsOutsideAHeaderAreMasked: an API key the policy hands to
// hookwall.apikey.verify is kept out of the decision log wherever the request carried it, not
// only as a whole header value (a real gateway, upstream and log file):
//   - sent twice in one header: the policy reads the copies joined ("k, k"), the log holds each
//     copy apart, and both are masked;
//   - as the last segment of a prefix route's path: request.path holds "***" in its place, and
//     "masked" names /request/path;
//   - in the query: the log drops the query.
func TestE2ECredentialsOutsideAHeaderAreMasked(t *testing.T) {
	const key = "k3y-0f-the-acme-c1ient-4ab9f0e2"
	sum := sha256.Sum256([]byte(key))
	up := startUpstream(t)
	cfg := strings.NewReplacer(`decisions = "off"`, `decisions = "{{DIR}}/decisions.log"`).Replace(quietHead) + `
[secrets]
acme_keys = {file = "keys.secret"}

[[route]]
name = "hdr"
path = "/hooks/hdr"
upstream = "{{UPSTREAM}}"
policy = "routes.hdr"

[[route]]
name = "inpath"
prefix = "/hooks/tg/"
upstream = "{{UPSTREAM}}"
policy = "routes.inpath"

[[route]]
name = "inquery"
path = "/hooks/q"
upstream = "{{UPSTREAM}}"
policy = "routes.inquery"
`
	cfg = strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL())
	files := map[string]string{
		"keys.secret": "sha256:" + hex.EncodeToString(sum[:]) + "\n",
		"policies/hdr.rego": `package routes.hdr

allow if hookwall.apikey.verify(input.request.headers["x-acme-client"], "acme_keys")
`,
		"policies/inpath.rego": `package routes.inpath

allow if hookwall.apikey.verify(trim_prefix(input.request.path, "/hooks/tg/"), "acme_keys")
`,
		"policies/inquery.rego": `package routes.inquery

allow if hookwall.apikey.verify(input.request.query.key[0], "acme_keys")
`,
	}
	e := startEnv(t, cfg, files, Options{Logger: discardLogger()})
	send := func(path string, hdr http.Header) int {
		t.Helper()
		req, _ := http.NewRequest("POST", e.base+path, strings.NewReader(`{"event":"ping"}`))
		req.Header = hdr
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The client's key sent twice (a proxy repeated it, a retry library added it again): the
	// joined value is not a key.
	h := http.Header{}
	h.Add("X-Acme-Client", key)
	h.Add("X-Acme-Client", key)
	if st := send("/hooks/hdr", h); st != 403 {
		t.Errorf("key sent twice: status %d, want 403", st)
	}
	if st := send("/hooks/tg/"+key, http.Header{}); st != 200 {
		t.Errorf("key in the path: status %d, want 200", st)
	}
	if st := send("/hooks/q?key="+key, http.Header{}); st != 200 {
		t.Errorf("key in the query: status %d, want 200", st)
	}
	e.stop()
	raw, err := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
	if len(lines) != 3 {
		t.Fatalf("%d records, want 3:\n%s", len(lines), raw)
	}
	for i, l := range lines {
		if bytes.Contains(l, []byte(key)) {
			t.Errorf("record %d holds the API key the policy handed to hookwall.apikey.verify:\n%s", i, l)
		}
	}
	if !bytes.Contains(lines[0], []byte(`"X-Acme-Client":"***","X-Acme-Client":"***"`)) {
		t.Errorf("the key sent twice is not masked in each copy:\n%s", lines[0])
	}
	if !bytes.Contains(lines[1], []byte(`"path":"/hooks/tg/***"`)) || !bytes.Contains(lines[1], []byte(`"masked":["/request/path"`)) {
		t.Errorf("the key in the path is not masked there, or not listed as masked:\n%s", lines[1])
	}
}
