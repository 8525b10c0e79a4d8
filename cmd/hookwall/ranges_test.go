package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/hookwall/hookwall/engine/policy"
)

// rangesServer serves fake provider payloads; answers maps a path to (status, body).
func rangesServer(t *testing.T, answers map[string][2]string) (*httptest.Server, *atomic.Value) {
	t.Helper()
	var ua atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ua.Store(r.Header.Get("User-Agent"))
		a, ok := answers[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		code := 200
		if a[0] != "" {
			code = map[string]int{"500": 500, "404": 404}[a[0]]
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, a[1])
	}))
	t.Cleanup(srv.Close)
	return srv, &ua
}

const fakeMeta = `{"verifiable_password_authentication": false,
 "hooks": ["198.51.100.0/24", "2001:db8:1::/48", "198.51.100.0/24", "203.0.113.9/24"],
 "web": ["192.0.2.0/24"]}`

const fakeStripe = `{"WEBHOOKS": ["192.0.2.10", "192.0.2.11", "::ffff:192.0.2.12", "2001:db8::5"]}`

func TestRangesUpdate(t *testing.T) {
	srv, ua := rangesServer(t, map[string][2]string{
		"/meta":              {"", fakeMeta},
		"/ips_webhooks.json": {"", fakeStripe},
		"/ips_webhooks.txt":  {"", "# stripe\n192.0.2.20\n\n192.0.2.21\n"},
	})
	dir := t.TempDir()
	out := filepath.Join(dir, "ranges", "data.json")
	var stdout, stderr bytes.Buffer
	code := cmdRanges(context.Background(), []string{"update", "-o", out, "--github-url", srv.URL + "/meta", "--stripe-url", srv.URL + "/ips_webhooks.json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "github hooks 3 ranges, stripe webhooks 4 addresses") {
		t.Errorf("stdout %q", stdout.String())
	}
	if got, _ := ua.Load().(string); !strings.HasPrefix(got, "hookwall/") {
		t.Errorf("User-Agent %q: GitHub's API refuses requests without one", got)
	}
	var doc rangesFile
	dec := json.NewDecoder(bytes.NewReader(mustRead(t, out)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.Updated != time.Now().UTC().Format(time.DateOnly) || !strings.Contains(doc.Method, "fetched") {
		t.Errorf("updated %q method %q", doc.Updated, doc.Method)
	}
	wantHooks := []string{"198.51.100.0/24", "2001:db8:1::/48", "203.0.113.0/24"}
	wantStripe := []string{"192.0.2.10/32", "192.0.2.11/32", "192.0.2.12/32", "2001:db8::5/128"}
	if strings.Join(doc.GitHub.Hooks, " ") != strings.Join(wantHooks, " ") || doc.GitHub.Source != srv.URL+"/meta" {
		t.Errorf("github %+v, want hooks %v", doc.GitHub, wantHooks)
	}
	if strings.Join(doc.Stripe.Webhooks, " ") != strings.Join(wantStripe, " ") || doc.Stripe.Source != srv.URL+"/ips_webhooks.json" {
		t.Errorf("stripe %+v, want webhooks %v", doc.Stripe, wantStripe)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files; the temporary file must be gone", len(entries))
	}

	// The file is what the shipped allowlist policy reads.
	allowed := evalAllowlist(t, filepath.Dir(out), "198.51.100.77")
	denied := evalAllowlist(t, filepath.Dir(out), "140.82.112.5") // real GitHub, not in the fake list
	stripe := evalAllowlist(t, filepath.Dir(out), "192.0.2.12")
	if !allowed || denied || !stripe {
		t.Fatalf("allowlist over the new file: 198.51.100.77=%v 140.82.112.5=%v 192.0.2.12=%v", allowed, denied, stripe)
	}

	// Stripe's text list works as well.
	code = cmdRanges(context.Background(), []string{"update", "-o", out, "--github-url", srv.URL + "/meta", "--stripe-url", srv.URL + "/ips_webhooks.txt"}, io.Discard, &stderr)
	if code != 0 {
		t.Fatalf("text list: exit %d: %s", code, stderr.String())
	}
	if err := json.Unmarshal(mustRead(t, out), &doc); err != nil || strings.Join(doc.Stripe.Webhooks, " ") != "192.0.2.20/32 192.0.2.21/32" {
		t.Fatalf("text list: %v %v", doc.Stripe.Webhooks, err)
	}
}

func TestRangesUpdateRefusesBadLists(t *testing.T) {
	srv, _ := rangesServer(t, map[string][2]string{
		"/meta":         {"", fakeMeta},
		"/stripe":       {"", fakeStripe},
		"/meta-empty":   {"", `{"hooks": []}`},
		"/meta-bad":     {"", `{"hooks": ["198.51.100.0/33"]}`},
		"/meta-html":    {"", `<html>rate limited</html>`},
		"/meta-500":     {"500", `{"hooks": ["198.51.100.0/24"]}`},
		"/stripe-bad":   {"", `{"WEBHOOKS": ["not-an-ip"]}`},
		"/stripe-empty": {"", `{"OTHER": ["192.0.2.1"]}`},
	})
	cases := []struct {
		name, gh, st, want string
	}{
		{"empty github list", "/meta-empty", "/stripe", "empty"},
		{"invalid CIDR", "/meta-bad", "/stripe", "not a CIDR"},
		{"not JSON", "/meta-html", "/stripe", "not the JSON"},
		{"server error", "/meta-500", "/stripe", "500"},
		{"missing", "/nope", "/stripe", "404"},
		{"invalid stripe IP", "/meta", "/stripe-bad", "not an IP address"},
		{"stripe field missing", "/meta", "/stripe-empty", "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "data.json")
			const before = `{"updated": "2000-01-01"}`
			if err := os.WriteFile(out, []byte(before), 0o644); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			code := cmdRanges(context.Background(), []string{"update", "-o", out, "--github-url", srv.URL + tc.gh, "--stripe-url", srv.URL + tc.st}, io.Discard, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d stderr %q, want 1 and %q", code, stderr.String(), tc.want)
			}
			if got := string(mustRead(t, out)); got != before {
				t.Fatalf("the file was rewritten: %s", got)
			}
		})
	}
	usage := [][]string{
		nil,
		{"refresh"},
		{"update", "extra"},
		{"update", "--github-url", "http://api.github.com/meta"}, // plain http off loopback
		{"update", "--stripe-url", "ftp://127.0.0.1/x"},
		{"update", "--bogus"},
	}
	for _, args := range usage {
		if code := cmdRanges(context.Background(), args, io.Discard, io.Discard); code != 2 {
			t.Errorf("args %q: exit %d, want 2", args, code)
		}
	}
}

// TestShippedRangesFileHasTheCommandsShape: the hand-written file is the shape the command
// writes, so an update replaces it like for like.
func TestShippedRangesFileHasTheCommandsShape(t *testing.T) {
	var doc rangesFile
	dec := json.NewDecoder(bytes.NewReader(mustRead(t, filepath.Join("..", "..", defaultRangesFile))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.GitHub.Source != defaultGitHubMeta || doc.Stripe.Source != defaultStripeIPs {
		t.Errorf("sources %q %q", doc.GitHub.Source, doc.Stripe.Source)
	}
	if _, err := time.Parse(time.DateOnly, doc.Updated); err != nil {
		t.Errorf("updated %q: %v", doc.Updated, err)
	}
	for _, list := range [][]string{doc.GitHub.Hooks, doc.Stripe.Webhooks} {
		norm, err := normalizeRanges(list)
		if err != nil || strings.Join(norm, " ") != strings.Join(list, " ") {
			t.Errorf("%v is not normalised (%v)", list, err)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// evalAllowlist compiles the shipped examples/ip_allowlist.rego with rangesDir as
// policies/ranges and asks whether ip is allowed.
func evalAllowlist(t *testing.T, rangesDir, ip string) bool {
	t.Helper()
	root := t.TempDir()
	for name, content := range map[string][]byte{
		"ranges/data.json":           mustRead(t, filepath.Join(rangesDir, "data.json")),
		"examples/ip_allowlist.rego": mustRead(t, filepath.Join("..", "..", "examples", "policies", "ip_allowlist.rego")),
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	set, err := policy.Load(ctx, root, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := set.Prepare(ctx, "examples.ip_allowlist")
	if err != nil {
		t.Fatal(err)
	}
	in := ast.NewObject(ast.Item(ast.StringTerm("request"), ast.ObjectTerm(ast.Item(ast.StringTerm("remote_ip"), ast.StringTerm(ip)))))
	d, err := q.Eval(ctx, in, nil)
	if err != nil {
		t.Fatal(err)
	}
	return d.Allow && !d.Denied()
}

// TestRangesUpdateRedirectKeepsTheURLRules: a redirect to plain http off loopback (0.0.0.0
// here, which would dial this machine were it followed) is refused as the first URL would
// be, and nothing is written.
func TestRangesUpdateRedirectKeepsTheURLRules(t *testing.T) {
	srv := httptest.NewServer(http.RedirectHandler("http://0.0.0.0:1/meta", http.StatusFound))
	t.Cleanup(srv.Close)
	out := filepath.Join(t.TempDir(), "data.json")
	var stdout, stderr bytes.Buffer
	code := cmdRanges(context.Background(), []string{"update", "-o", out, "--github-url", srv.URL + "/meta", "--stripe-url", srv.URL + "/ips"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "want an https URL") {
		t.Fatalf("exit %d, stderr %q: want the redirect refused", code, &stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a file was written")
	}
}
