package gateway

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestUnderscoreHeaderNames: many servers read X_Forwarded_For as X-Forwarded-For (CGI's
// HTTP_X_FORWARDED_FOR), so a field whose name has an underscore would reach the upstream
// under a name that neither the policy nor the headers the gateway strips and sets know it
// by. By default such a request is refused with 400 before anything runs; with
// underscore_headers = "drop" the fields are removed, and neither the policy nor the upstream
// sees them.
func TestUnderscoreHeaderNames(t *testing.T) {
	const policy = `package routes.open

allow := true

deny contains "override refused" if input.request.headers["x-http-method-override"]

deny contains "underscore seen" if input.request.headers["x_http_method_override"]
`
	for _, mode := range []string{"", "reject", "drop"} {
		t.Run("mode "+mode, func(t *testing.T) {
			up := startUpstream(t)
			set := ""
			if mode != "" {
				set = fmt.Sprintf("underscore_headers = %q\n", mode)
			}
			cfg := strings.Replace(quietHead, "[admin]", set+"[admin]", 1) + fmt.Sprintf(`
[[route]]
name = "open"
path = "/hooks/open"
upstream = %q
policy = "routes.open"
`, up.URL())
			e := startEnv(t, cfg, map[string]string{"policies/open.rego": policy}, Options{Logger: discardLogger()})
			req, _ := http.NewRequest("POST", e.base+"/hooks/open", strings.NewReader("{}"))
			req.Header["X_Http_Method_Override"] = []string{"DELETE"}
			req.Header["X_Forwarded_For"] = []string{"6.6.6.6"}
			req.Header.Set("X-Event", "ping")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			reqs := up.requests()
			if mode == "drop" {
				if resp.StatusCode != 200 || len(reqs) != 1 {
					t.Fatalf("drop: status %d, %d forwarded; want 200 and the request forwarded without the fields", resp.StatusCode, len(reqs))
				}
				for name := range reqs[0].Header {
					if strings.Contains(name, "_") {
						t.Errorf("forwarded %s: %q", name, reqs[0].Header[name])
					}
				}
				if got := reqs[0].Header.Values("X-Forwarded-For"); len(got) != 1 || got[0] != "127.0.0.1" {
					t.Errorf("X-Forwarded-For forwarded as %q, want only the gateway's", got)
				}
				if reqs[0].Header.Get("X-Event") != "ping" {
					t.Errorf("a field without an underscore was dropped too: %v", reqs[0].Header)
				}
				return
			}
			if resp.StatusCode != 400 || !resp.Close || len(reqs) != 0 {
				t.Errorf("reject: status %d, connection closed %v, %d forwarded; want 400, closed, nothing forwarded", resp.StatusCode, resp.Close, len(reqs))
			}
		})
	}
}
