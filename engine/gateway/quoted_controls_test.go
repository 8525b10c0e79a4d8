package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// TestAdminAnswersEscapeC1: a deny reason quoting a client's header holds whatever the client
// sent, C1 controls included (U+009B is a terminal's CSI); the log escapes them, and so must
// the admin API's answers, which operators read with curl on a terminal.
func TestAdminAnswersEscapeC1(t *testing.T) {
	e := tenantGateway(t)
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("POST /hooks/r HTTP/1.1\r\nHost: x\r\nX-Tenant: \xc2\x9b2J\xc2\x9b31mevil\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
	_, _ = io.ReadAll(c)
	c.Close()
	var body []byte
	testutil.WaitFor(t, func() bool {
		resp, err := client.Get(e.admin + "/-/recent")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return bytes.Contains(body, []byte("unknown tenant"))
	})
	if bytes.Contains(body, []byte("\u009b")) || bytes.Contains(body, []byte{0x7f}) {
		t.Errorf("/-/recent holds a raw C1 control or DEL: %q", body)
	}
	if !bytes.Contains(body, []byte(`\u009b2J\u009b31mevil`)) {
		t.Errorf("/-/recent does not quote the reason escaped: %q", body)
	}
}

// TestDeniedAnswerIsJSON: a 403's body quotes the policy's reasons, which may quote what a
// client sent (invalid UTF-8, which Go's quoting writes as \xff, not JSON); it is JSON
// whatever they hold.
func TestDeniedAnswerIsJSON(t *testing.T) {
	e := tenantGateway(t)
	for _, tenant := range []string{"a\xffb", "\xc2\x9b2J", "tab\there"} {
		c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write([]byte("POST /hooks/r HTTP/1.1\r\nHost: x\r\nX-Tenant: " + tenant + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		ans, _ := io.ReadAll(c)
		c.Close()
		head, body, _ := bytes.Cut(ans, []byte("\r\n\r\n"))
		if !bytes.HasPrefix(head, []byte("HTTP/1.1 403")) {
			t.Fatalf("X-Tenant %q: %q, want 403", tenant, head)
		}
		var got struct{ Reasons []string }
		if err := json.Unmarshal(body, &got); err != nil || len(got.Reasons) != 1 || !strings.HasPrefix(got.Reasons[0], "unknown tenant ") {
			t.Errorf("X-Tenant %q: the 403 body %q is not the reasons' JSON: %v", tenant, body, err)
		}
	}
}

// tenantGateway serves /hooks/r with a policy that denies every tenant but acme, its reason
// quoting the X-Tenant header as the client sent it.
func tenantGateway(t *testing.T) *env {
	t.Helper()
	up := startUpstream(t)
	cfg := strings.ReplaceAll(loggingHead()+`
[[route]]
name = "r"
path = "/hooks/r"
upstream = "{{UPSTREAM}}"
policy = "routes.r"
`, "{{UPSTREAM}}", up.URL())
	policy := "package routes.r\n\nallow := true\n\ndeny contains sprintf(\"unknown tenant %s\", [input.request.headers[\"x-tenant\"]]) if input.request.headers[\"x-tenant\"] != \"acme\"\n"
	e := startEnv(t, cfg, map[string]string{"policies/r.rego": policy}, Options{Logger: discardLogger()})
	return e
}
