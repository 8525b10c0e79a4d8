package server

import (
	"net"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/internal/input"
	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/policy"
)

// BenchmarkForwardingCost measures what the canonical path and the forwarded headers add to a
// request: "copy" only resets the request from a template (the baseline to subtract),
// "routed" adds routePath and prepare, for a canonical and a normalised target.
func BenchmarkForwardingCost(b *testing.B) {
	route := &snapshot.Route{BasePath: "/in"}
	meta := &input.Meta{ID: "0123456789abcdef0123456789abcdef", Scheme: "http"}
	remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}
	cfg, err := config.Parse("g.toml", []byte("[[route]]\nname = \"r\"\npath = \"/\"\nupstream = \"http://127.0.0.1:1\"\npolicy = \"p\"\n"))
	if err != nil {
		b.Fatal(err)
	}
	strip := cfg.Server.StripMarks()
	for _, target := range []string{"/hooks/github", "/hooks//github/%61"} {
		var tmpl fasthttp.Request
		tmpl.Header.SetMethod("POST")
		tmpl.SetRequestURI(target)
		tmpl.Header.SetHost("gw")
		for _, kv := range [][2]string{{"Content-Type", "application/json"}, {"X-GitHub-Event", "push"}, {"X-GitHub-Delivery", "d-1"}, {"X-Hub-Signature-256", "sha256=00"}, {"User-Agent", "GitHub-Hookshot/1"}} {
			tmpl.Header.Set(kv[0], kv[1])
		}
		for _, routed := range []bool{false, true} {
			name := target + "/copy"
			if routed {
				name = target + "/routed"
			}
			b.Run(name, func(b *testing.B) {
				var ctx fasthttp.RequestCtx
				ctx.Init(&tmpl, remote, nil)
				x := &exchange{}
				headers := []policy.Header{{Name: "X-Tenant", Value: "acme"}}
				b.ReportAllocs()
				for b.Loop() {
					tmpl.CopyTo(&ctx.Request)
					if !routed {
						continue
					}
					x.reset()
					path, ok := routePath(&ctx, config.PathReject, x)
					if !ok {
						b.Fatal("refused")
					}
					if x.rewrite {
						useCanonicalPath(&ctx.Request, path, &x.fwd)
					}
					x.fwd.peer, x.fwd.strip = "127.0.0.1", strip
					x.fwd.headers = headers
					if err := x.fwd.prepare(&ctx.Request, route, meta); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
