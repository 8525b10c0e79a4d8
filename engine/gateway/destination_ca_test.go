package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/tlsconf/tlstest"
)

// TestDestinationsUseTheRoutesCA: a queued route's https destinations are checked against
// the route's upstream_ca, as its upstream is (an internal destination behind the private
// CA was refused against the system roots, and its deliveries went dead), both beside an
// https upstream and beside a plain one.
func TestDestinationsUseTheRoutesCA(t *testing.T) {
	ca := tlstest.NewCA(t, "internal CA")
	for _, tlsUpstream := range []bool{true, false} {
		name := map[bool]string{true: "https upstream", false: "plain upstream"}[tlsUpstream]
		t.Run(name, func(t *testing.T) {
			srv, got := secTLSUpstream(t, ca)
			upstream, want := srv.URL, 2
			if !tlsUpstream {
				upstream, want = startUpstream(t).URL(), 1
			}
			cfg := strings.ReplaceAll(queuedConfig, "{{UPSTREAM}}/base", upstream+"/base")
			cfg = strings.ReplaceAll(cfg, "{{UPSTREAM}}", upstream)
			cfg = strings.ReplaceAll(cfg, "{{MAX}}", "100")
			cfg = strings.Replace(cfg, `retry = ["50ms", "50ms", "50ms"]`, `retry = ["50ms", "50ms", "50ms"]`+
				"\nupstream_ca = \"internal-ca.pem\"\ndestinations = [\""+srv.URL+"/second\"]", 1)
			e := startEnv(t, cfg, map[string]string{"policies/github.rego": queuedPolicy, "github.secret": "s3cret", "internal-ca.pem": string(ca.CertPEM)}, Options{})
			body := `{"n":1}`
			if r := e.do("POST", "/hooks/github", []byte(body), signed(body, "")); r.Status != 202 {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			var seen []http.Header
			deadline := time.After(5 * time.Second)
			for len(seen) < want {
				select {
				case h := <-got:
					seen = append(seen, h)
				case <-deadline:
					t.Fatalf("the https servers got %d deliveries in 5s, want %d; dead: %v", len(seen), want, decisionLines(t, e, "dead"))
				}
			}
			for _, h := range seen {
				if h.Get("X-Seen-Tls") != "yes" {
					t.Fatalf("a delivery came without TLS: %v", h)
				}
			}
		})
	}
}
