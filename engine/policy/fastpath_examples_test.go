package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// TestFastPathExamples holds the example packages the fast path covers to topdown's
// decisions: examples.apikey (the API-key built-in), examples.validation (else, JSON schema
// validation) and examples.ip_allowlist (ranges from the base document). Each must be
// allowed and denied by some input.
func TestFastPathExamples(t *testing.T) {
	sum := sha256.Sum256([]byte("k-live-1"))
	secrets := secretMap{"partner_keys": []byte("sha256:" + hex.EncodeToString(sum[:]) + "\n")}
	set, err := Load(context.Background(), examplesServed(t), Options{Secrets: secrets})
	if err != nil {
		t.Fatal(err)
	}
	event := `{"id":"evt_12345678","type":"order.paid","created":1,"data":{"order_id":"o-1","amount":100,"currency":"EUR"}}`
	bodies := []string{event, `{"id":"x","type":"order.paid","created":1,"data":{}}`, `[1]`, `not json`, `{"id":"evt_12345678"}`}
	headers := []map[string]string{
		nil,
		{"Content-Type": "application/json", "X-Api-Key": "k-live-1"},
		{"Content-Type": "application/cloudevents+json; charset=utf-8", "Authorization": "Bearer k-live-1"},
		{"Content-Type": "text/plain", "X-Api-Key": "wrong"},
		{"Content-Type": "application/json", "Authorization": "Bearer wrong"},
	}
	ips := []string{"192.0.2.1", "140.82.112.9", "3.18.12.63", "2606:50c0::1", "not-an-ip"}
	for _, pkg := range []string{"examples.apikey", "examples.validation", "examples.ip_allowlist"} {
		q := prepareCompiled(t, set, pkg)
		var allowed, denied, failed int
		for _, body := range bodies {
			for _, h := range headers {
				for _, ip := range ips {
					req := requestValue("POST", "/hooks/x", h, body)
					req.Insert(ast_remote_ip, ast.StringTerm(ip))
					var v any
					if q.NeedsJSON() && json.Unmarshal([]byte(body), &v) == nil {
						req.Insert(ast.StringTerm("json"), ast.NewTerm(ast.MustInterfaceToValue(v)))
					}
					d, err := evalBoth(t, q, doc(req), nil)
					switch {
					case err != nil: // as topdown (evalBoth): net.cidr_contains on "not-an-ip"
						failed++
					case d.Denied():
						denied++
					default:
						allowed++
					}
				}
			}
		}
		t.Logf("%-22s %d allowed, %d denied, %d errors", pkg, allowed, denied, failed)
		if allowed == 0 || denied == 0 {
			t.Errorf("%s: the inputs never reach both outcomes (%d allowed, %d denied)", pkg, allowed, denied)
		}
	}
}

// examplesServed lays the example policies out as a user serves them: copied into a policies
// directory beside the shipped sender ranges (data.ranges) that ip_allowlist reads.
func examplesServed(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("../../examples/policies")); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(root, "ranges"), os.DirFS("../../policies/ranges")); err != nil {
		t.Fatal(err)
	}
	return root
}
