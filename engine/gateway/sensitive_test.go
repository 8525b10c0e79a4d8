package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// credentialRoutesConfig is a gateway with the routes "key" (an API key) and "sig" (a
// generic hmac check) on {{UPSTREAM}}, their secrets in keys.secret and hmac.secret, on
// the compiled evaluator or (opaOnly) topdown.
func credentialRoutesConfig(opaOnly bool) string {
	evaluator := map[bool]string{false: `"auto"`, true: `"opa"`}[opaOnly]
	return strings.NewReplacer("[log]", "evaluator = "+evaluator+"\n[log]").Replace(loggingHead()) + `
[secrets]
acme_keys = {file = "keys.secret"}
acme_hmac = {file = "hmac.secret"}

[[route]]
name = "key"
path = "/hooks/key"
upstream = "{{UPSTREAM}}"
policy = "routes.key"

[[route]]
name = "sig"
path = "/hooks/sig"
upstream = "{{UPSTREAM}}"
policy = "routes.sig"
`
}

// TestCredentialsUnderCustomNamesAreMasked: the decision log masks a header by its name
// (Authorization, anything with "signature", "token", "api-key"…), but a policy may read its
// credential from a header named anything. The key a policy hands to hookwall.apikey.verify
// and the signature a generic "hmac" check reads are masked all the same, right or wrong, on
// the compiled evaluator and on topdown, and a header that merely looks alike is not.
func TestCredentialsUnderCustomNamesAreMasked(t *testing.T) {
	const key = "k3y-0f-the-acme-c1ient-4ab9f0e2"
	const hmacSecret = "acme-hmac-secret"
	sum := sha256.Sum256([]byte(key))
	for _, opaOnly := range []bool{false, true} {
		name := "compiled"
		if opaOnly {
			name = "topdown"
		}
		t.Run(name, func(t *testing.T) {
			up := startUpstream(t)
			cfg := credentialRoutesConfig(opaOnly) + `
[[route]]
name = "trial"
path = "/hooks/trial"
upstream = "{{UPSTREAM}}"
policy = "routes.open"
shadow_policy = "routes.key"
`
			cfg = strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL())
			files := map[string]string{
				"keys.secret": "sha256:" + hex.EncodeToString(sum[:]) + "\n",
				"hmac.secret": hmacSecret,
				"policies/key.rego": `package routes.key

allow if hookwall.apikey.verify(input.request.headers["x-acme-client"], "acme_keys")
`,
				"policies/open.rego": "package routes.open\n\nallow := true\n",
				"policies/sig.rego": `package routes.sig

allow if hookwall.webhook.verify("hmac", input.request, {"secret": "acme_hmac", "header": "X-Acme-Mac"}).valid
`,
			}
			e := startEnv(t, cfg, files, Options{Logger: discardLogger()})
			post := func(path string, h map[string]string, body string) int {
				t.Helper()
				hh := http.Header{}
				for k, v := range h {
					hh.Set(k, v)
				}
				return postHeaders(t, e.base+path, body, hh)
			}
			body := `{"event":"ping"}`
			m := hmac.New(sha256.New, []byte(hmacSecret))
			m.Write([]byte(body))
			sig := hex.EncodeToString(m.Sum(nil))
			wrongKey := "not-the-key-but-still-a-credential"
			wrongSig := strings.Repeat("0", 64)
			if st := post("/hooks/key", map[string]string{"X-Acme-Client": key, "X-Note": "plain"}, body); st != 200 {
				t.Fatalf("right key: status %d", st)
			}
			if st := post("/hooks/key", map[string]string{"X-Acme-Client": wrongKey, "X-Copy": "Bearer " + wrongKey}, body); st != 403 {
				t.Fatalf("wrong key: status %d", st)
			}
			if st := post("/hooks/sig", map[string]string{"X-Acme-Mac": sig, "X-Note": "plain"}, body); st != 200 {
				t.Fatalf("right signature: status %d", st)
			}
			if st := post("/hooks/sig", map[string]string{"X-Acme-Mac": wrongSig}, body); st != 403 {
				t.Fatalf("wrong signature: status %d", st)
			}
			// A shadow policy's builtins are handed credentials too.
			if st := post("/hooks/trial", map[string]string{"X-Acme-Client": key}, body); st != 200 {
				t.Fatalf("shadow route: status %d", st)
			}
			raw, lines := stopAndReadLog(t, e)
			for _, v := range []string{key, wrongKey, sig, wrongSig} {
				if bytes.Contains(raw, []byte(v)) {
					t.Errorf("the decision log holds the credential %q:\n%s", v, raw)
				}
			}
			if len(lines) != 5 {
				t.Fatalf("%d records, want 5:\n%s", len(lines), raw)
			}
			for i, l := range lines {
				var r struct {
					Request struct {
						Headers map[string]string `json:"headers"`
					} `json:"request"`
					Masked []string `json:"masked"`
				}
				if err := json.Unmarshal(l, &r); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				h := r.Request.Headers
				want := map[int][]string{0: {"X-Acme-Client"}, 1: {"X-Acme-Client", "X-Copy"}, 2: {"X-Acme-Mac"}, 3: {"X-Acme-Mac"}, 4: {"X-Acme-Client"}}[i]
				for _, n := range want {
					if h[n] != "***" {
						t.Errorf("record %d: %s = %q, want masked", i, n, h[n])
					}
					if !slices.Contains(r.Masked, "/request/headers/"+n) {
						t.Errorf("record %d: masked %v does not name %s", i, r.Masked, n)
					}
				}
				if n, ok := h["X-Note"]; ok && n != "plain" {
					t.Errorf("record %d: X-Note = %q, want its value", i, n)
				}
			}
		})
	}
}

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
	cfg := loggingHead() + `
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
		return postHeaders(t, e.base+path, `{"event":"ping"}`, hdr)
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
	raw, lines := stopAndReadLog(t, e)
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

// loggingHead is quietHead with the decision log written to the env's directory.
func loggingHead() string {
	return strings.Replace(quietHead, `decisions = "off"`, `decisions = "{{DIR}}/decisions.log"`, 1)
}

// postHeaders POSTs body to url with headers h and returns the status.
func postHeaders(t *testing.T, url, body string, h http.Header) int {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header = h
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// stopAndReadLog stops the env (which flushes its decision log) and returns the log and its
// lines.
func stopAndReadLog(t *testing.T, e *env) (raw []byte, lines [][]byte) {
	t.Helper()
	e.stop()
	raw, err := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	return raw, bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
}
