package gateway

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// verifyJS checks every delivery with the Standard Webhooks reference library, and that a
// tampered body fails its check.
const verifyJS = `
const { Webhook } = require("standardwebhooks");
const [secret, file] = process.argv.slice(2);
const wh = new Webhook(secret);
const items = JSON.parse(require("fs").readFileSync(file, "utf8"));
for (const it of items) {
	wh.verify(it.body, it.headers);
	let rejected = false;
	try { wh.verify(it.body + " ", it.headers); } catch (e) { rejected = true; }
	if (!rejected) { throw new Error("a tampered body verified"); }
}
console.log("verified " + items.length);
`

// A queued route with sign = "…" signs every attempt so that the standardwebhooks npm
// library verifies it, under the delivery id as webhook-id.
func TestQueuedSignStandardWebhooks(t *testing.T) {
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is needed (CI installs nodejs npm)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	js := t.TempDir()
	install := exec.Command("npm", "install", "--no-audit", "--no-fund", "--silent", "standardwebhooks@1.3.0")
	install.Dir = js
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install standardwebhooks: %v\n%s", err, out)
	}
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	up := startUpstream(t)
	cfg := strings.ReplaceAll(queuedConfig, `retry = ["50ms", "50ms", "50ms"]`, `retry = ["50ms", "50ms", "50ms"]`+"\n"+`sign = "wh"`)
	cfg = strings.ReplaceAll(cfg, `github = {file = "github.secret"}`, "github = {file = \"github.secret\"}\nwh = {file = \"wh.secret\"}")
	cfg = strings.ReplaceAll(strings.ReplaceAll(cfg, "{{UPSTREAM}}", up.URL()), "{{MAX}}", "100")
	e := startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret", "wh.secret": secret}, Options{})
	var ids []string
	for _, body := range []string{`{"a":1}`, `{"emoji":"✓","n":[1,2,3]}`} {
		r := e.do("POST", "/hooks/github", []byte(body), signed(body, ""))
		if r.Status != 202 {
			t.Fatalf("status %d", r.Status)
		}
		ids = append(ids, r.Header.Get("Hookwall-Delivery-Id"))
	}
	testutil.WaitFor(t, func() bool { return len(up.requests()) == 2 })
	type item struct {
		Body    string            `json:"body"`
		Headers map[string]string `json:"headers"`
	}
	var items []item
	for i, r := range up.requests() {
		h := map[string]string{}
		for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
			h[k] = r.Header.Get(k)
		}
		if h["webhook-id"] != r.Header.Get("Hookwall-Delivery-Id") || !strings.HasPrefix(h["webhook-signature"], "v1,") {
			t.Fatalf("delivery %d headers: %v", i, h)
		}
		items = append(items, item{Body: string(r.Body), Headers: h})
	}
	if items[0].Headers["webhook-id"] != ids[0] && items[0].Headers["webhook-id"] != ids[1] {
		t.Fatalf("webhook-id %q is not a delivery id", items[0].Headers["webhook-id"])
	}
	raw, _ := json.Marshal(items)
	file := filepath.Join(js, "deliveries.json")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(js, "verify.js"), []byte(verifyJS), 0o644); err != nil {
		t.Fatal(err)
	}
	node := exec.Command("node", "verify.js", secret, file)
	node.Dir = js
	out, err := node.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verified 2") {
		t.Fatalf("standardwebhooks: %v\n%s", err, out)
	}
}

// A sign secret that is not a Standard Webhooks key stops the load, naming the secret and
// never quoting it.
func TestQueuedSignBadSecret(t *testing.T) {
	dir := t.TempDir()
	cfg := strings.ReplaceAll(queuedConfig, `retry = ["50ms", "50ms", "50ms"]`, `sign = "wh"`)
	cfg = strings.ReplaceAll(cfg, `github = {file = "github.secret"}`, "github = {file = \"github.secret\"}\nwh = {file = \"wh.secret\"}")
	cfg = strings.ReplaceAll(strings.ReplaceAll(cfg, "{{UPSTREAM}}", "http://127.0.0.1:1"), "{{MAX}}", "100")
	files := map[string]string{"gateway.toml": cfg, "policies/github.rego": queuedPolicy, "github.secret": "s3cret", "wh.secret": "not-a-key!"}
	for name, content := range files {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Check(t.Context(), filepath.Join(dir, "gateway.toml"), Options{})
	if err == nil || !strings.Contains(err.Error(), `sign: secret "wh"`) || strings.Contains(err.Error(), "not-a-key") {
		t.Fatalf("check: %v", err)
	}
}

// A queued config whose SQLite store sits in a directory that does not exist fails check,
// naming the key and its line, as run would fail opening it.
func TestCheckRefusesADeliveryPathWithNoDirectory(t *testing.T) {
	dir := t.TempDir()
	cfg := strings.ReplaceAll(queuedConfig, "max_pending = {{MAX}}", "max_pending = 100\npath = \"no/such/dir/d.db\"")
	cfg = strings.ReplaceAll(cfg, "{{UPSTREAM}}", "http://127.0.0.1:1")
	files := map[string]string{"gateway.toml": cfg, "policies/github.rego": queuedPolicy, "github.secret": "s3cret"}
	for name, content := range files {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Check(t.Context(), filepath.Join(dir, "gateway.toml"), Options{})
	if err == nil || !strings.Contains(err.Error(), "gateway.toml:19: delivery.path: the directory") {
		t.Fatalf("check: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "no/such/dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := Check(t.Context(), filepath.Join(dir, "gateway.toml"), Options{})
	if err != nil {
		t.Fatalf("check with the directory made: %v", err)
	}
	c.Close()
}
