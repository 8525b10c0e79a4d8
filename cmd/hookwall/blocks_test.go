package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/gateway"
	"github.com/hookwall/hookwall/engine/tlsconf/tlstest"
)

// TestBlocksListAndLift runs a gateway with [watch] block = true and an admin token, gets a
// loopback address blocked with forged requests, and lists and lifts the block with the CLI,
// which finds the admin address and token in the config.
func TestBlocksListAndLift(t *testing.T) {
	pub, adm := freePort(t), freePort(t)
	dir := writeTree(t, map[string]string{
		"gateway.toml": fmt.Sprintf(`
[server]
listen = %q
[admin]
listen = %q
token = "admin-token"
[log]
decisions = "off"
[watch]
window = "2s"
min_events = 3
block = true
[[route]]
name = "a"
path = "/a"
upstream = "http://127.0.0.1:1"
policy = "routes.a"
`, pub, adm),
		"policies/a.rego": "package routes.a\nallow := true\ndeny contains \"signature: signature mismatch\"\n",
	})
	cfgPath := filepath.Join(dir, "gateway.toml")
	runGateway(t, cfgPath)

	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 5 * time.Second}
	// Start with a window (multiples of 2s since the epoch), so the three refusals are
	// counted in one: a burst across a boundary could fall a fraction short of min_events.
	now := time.Now().UnixNano()
	time.Sleep(time.Duration((now/int64(2*time.Second)+1)*int64(2*time.Second)-now) + 10*time.Millisecond)
	for i, want := range []int{403, 403, 403, 429} {
		r, err := c.Post("http://"+pub+"/a", "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != want {
			t.Fatalf("request %d: %d, want %d", i, r.StatusCode, want)
		}
	}

	blocks := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"blocks"}, args...), &out, &errb)
		return code, out.String(), errb.String()
	}
	code, out, errOut := blocks("list", "-c", cfgPath)
	if code != 0 || !strings.Contains(out, "SOURCE") || !strings.Contains(out, "127.0.0.2") || !strings.Contains(out, "signature") {
		t.Fatalf("blocks list: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := blocks("list", "-c", cfgPath, "--token", "wrong"); code != 1 || !strings.Contains(errOut, "401") {
		t.Fatalf("blocks list with a wrong token: exit %d %s", code, errOut)
	}
	for _, c := range []struct {
		header bool
		want   int
	}{{false, 403}, {true, 401}} {
		// A web page can send neither the token nor Hookwall-Admin: 403; a tool without the
		// token: 401.
		req, _ := http.NewRequest(http.MethodDelete, "http://"+adm+"/-/blocks/127.0.0.2", nil)
		if c.header {
			req.Header.Set(gateway.AdminHeader, "1")
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != c.want {
			t.Fatalf("DELETE /-/blocks without the token (Hookwall-Admin %v): %d, want %d", c.header, r.StatusCode, c.want)
		}
	}
	if code, out, errOut := blocks("lift", "-c", cfgPath, "127.0.0.2"); code != 0 || out != "lifted 127.0.0.2\n" {
		t.Fatalf("blocks lift: exit %d %q %s", code, out, errOut)
	}
	if code, out, _ := blocks("list", "-c", cfgPath, "--json"); code != 0 || strings.TrimSpace(out) != "{\n  \"blocks\": []\n}" {
		t.Fatalf("blocks list after the lift: exit %d %q", code, out)
	}
	if code, _, errOut := blocks("lift", "-c", cfgPath, "127.0.0.2"); code != 1 || !strings.Contains(errOut, "404") {
		t.Fatalf("lifting again: exit %d %s", code, errOut)
	}
	r, err := c.Post("http://"+pub+"/a", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 403 {
		t.Fatalf("after the lift: %d, want the policy's 403", r.StatusCode)
	}
	if code, _, _ := blocks("frob"); code != 2 {
		t.Fatalf("unknown subcommand: exit %d, want 2", code)
	}
}

// TestAdminCLIOverTLS: with [admin] tls_cert the CLI calls the admin API over https and accepts
// only the certificate the config names (a pin: the loopback address it dials is not a name
// the certificate carries), so it never sends the token to another listener.
func TestAdminCLIOverTLS(t *testing.T) {
	pub, adm := freePort(t), freePort(t)
	leaf := tlstest.NewCA(t, "admin CA").Server(t, "admin.internal")
	other := tlstest.NewCA(t, "other CA").Server(t, "admin.internal")
	head := fmt.Sprintf(`
[server]
listen = %q
[admin]
listen = %q
token = "admin-token"
tls_key = "admin.key"
`, pub, adm)
	tail := `
[log]
decisions = "off"
[watch]
block = true
[[route]]
name = "a"
path = "/a"
upstream = "http://127.0.0.1:1"
policy = "routes.a"
`
	dir := writeTree(t, map[string]string{
		"gateway.toml":    head + "tls_cert = \"admin.crt\"\n" + tail,
		"impostor.toml":   head + "tls_cert = \"other.crt\"\n" + tail,
		"combined.toml":   head + "tls_cert = \"combined.pem\"\n" + tail,
		"gone.toml":       head + "tls_cert = \"gone.crt\"\n" + tail,
		"combined.pem":    string(leaf.KeyPEM) + string(leaf.CertPEM),
		"admin.crt":       string(leaf.CertPEM),
		"admin.key":       string(leaf.KeyPEM),
		"other.crt":       string(other.CertPEM),
		"policies/a.rego": "package routes.a\nallow := true\n",
	})
	runGateway(t, filepath.Join(dir, "gateway.toml"))
	blocks := func(cfg string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"blocks", "list", "-c", filepath.Join(dir, cfg)}, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errOut := blocks("gateway.toml"); code != 0 || !strings.Contains(out, "SOURCE") {
		t.Fatalf("blocks list over TLS: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := blocks("impostor.toml"); code != 1 || !strings.Contains(errOut, "not the one in") {
		t.Fatalf("blocks list pinned to another certificate: exit %d, want 1 and the pin's refusal\n%s%s", code, out, errOut)
	}
	// A file holding the key before the certificate, which the gateway takes as tls_cert too.
	if code, out, errOut := blocks("combined.toml"); code != 0 || !strings.Contains(out, "SOURCE") {
		t.Fatalf("blocks list pinned to a key-then-certificate file: exit %d\n%s%s", code, out, errOut)
	}
	// A plain http:// --admin needs no certificate, readable or not.
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"blocks", "list", "-c", filepath.Join(dir, "gone.toml"), "--admin", "http://" + adm}, &out, &errb)
	if strings.Contains(errb.String(), "gone.crt") {
		t.Fatalf("blocks list --admin http://…: exit %d, the unused certificate was read: %s", code, &errb)
	}
}
