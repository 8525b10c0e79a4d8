package gateway

import (
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// bareProxy is the baseline: a fasthttp server that forwards every request to the upstream
// with a pooled HostClient and no checks at all.
func bareProxy(b *testing.B, upstream string) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hc := &fasthttp.HostClient{Addr: strings.TrimPrefix(upstream, "http://"), MaxConns: 1024}
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Request.Header.Del("Connection")
		if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
			ctx.Error("bad gateway", fasthttp.StatusBadGateway)
		}
	}}
	go srv.Serve(ln) //nolint:errcheck
	b.Cleanup(func() { _ = srv.Shutdown() })
	return ln.Addr().String()
}

// drive sends n signed POSTs over conc keep-alive connections and returns the elapsed time.
func drive(b *testing.B, addr string, n, conc int, body []byte, sig string) time.Duration {
	b.Helper()
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: conc}
	var wg sync.WaitGroup
	per := n / conc
	start := time.Now()
	var failed sync.Once
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for i := 0; i < per; i++ {
				req.Reset()
				req.SetRequestURI("http://" + addr + "/hooks/github")
				req.Header.SetMethod("POST")
				req.Header.Set("X-Hub-Signature-256", sig)
				req.Header.Set("X-GitHub-Event", "push")
				req.Header.SetContentType("application/json")
				req.SetBody(body)
				if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					failed.Do(func() { b.Errorf("request failed: %v status %d %s", err, resp.StatusCode(), resp.Body()) })
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start)
}

// verifyAllowPolicy is the smallest useful GitHub route: verify the GitHub signature, allow.
const verifyAllowPolicy = `package routes.github

allow if hookwall.webhook.verify("github", input.request, {"secret": "github"}).valid
`

// BenchmarkGatewayVsBareProxy measures a GitHub route against a bare fasthttp proxy in the
// same run, alternating, and reports the throughput ratio: "verify-allow" is the route
// verify + allow, "demo" adds deny reasons, status, labels and upstream headers.
func BenchmarkGatewayVsBareProxy(b *testing.B) {
	for _, c := range []struct{ name, policy string }{{"verify-allow", verifyAllowPolicy}, {"demo", githubPolicy}} {
		b.Run(c.name, func(b *testing.B) { benchGatewayVsBare(b, c.policy) })
	}
}

func benchGatewayVsBare(b *testing.B, policy string) {
	up := startUpstreamB(b)
	bare := bareProxy(b, up)
	e := startEnvB(b, strings.ReplaceAll(`
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
decisions = "off"
[secrets]
github = {file = "github.secret"}
[[route]]
name = "github"
path = "/hooks/github"
upstream = "{{UPSTREAM}}"
policy = "routes.github"
`, "{{UPSTREAM}}", up), map[string]string{
		"policies/routes/github.rego": policy,
		"github.secret":               secret,
	})
	body := []byte(`{"ref":"refs/heads/main","pad":"` + strings.Repeat("x", 2000) + `"}`)
	sig := githubSig(secret, body)
	gw := strings.TrimPrefix(e.base, "http://")
	const conc = 32
	n := b.N
	if n < conc*10 {
		n = conc * 10
	}
	// Warm both paths (connections, pools, JIT-free but cache-cold code).
	drive(b, bare, conc*10, conc, body, sig)
	drive(b, gw, conc*10, conc, body, sig)
	b.ResetTimer()
	var tBare, tGW time.Duration
	for round := 0; round < 4; round++ {
		tBare += drive(b, bare, n/4, conc, body, sig)
		tGW += drive(b, gw, n/4, conc, body, sig)
	}
	b.StopTimer()
	b.ReportMetric(float64(tBare.Nanoseconds())/float64(n), "bare-ns/req")
	b.ReportMetric(float64(tGW.Nanoseconds())/float64(n), "hookwall-ns/req")
	b.ReportMetric(float64(tBare)/float64(tGW), "ratio")
}
