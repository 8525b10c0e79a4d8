package gateway

import (
	"fmt"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestAnswerCarriesOneRequestID: the client's answer carries the decision id as its only
// X-Request-Id, whatever copies the upstream's answer had (fasthttp's Set replaced the first
// and kept the others).
func TestAnswerCarriesOneRequestID(t *testing.T) {
	up := startUpstream(t)
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Add("X-Request-Id", "upstream-1")
		ctx.Response.Header.Add("X-Request-Id", "upstream-2")
		ctx.SetStatusCode(200)
	})
	cfg := quietHead + fmt.Sprintf(`
[[route]]
name = "open"
path = "/hooks/open"
upstream = %q
policy = "routes.open"
`, up.URL())
	e := startEnv(t, cfg, map[string]string{"policies/open.rego": "package routes.open\n\nallow := true\n"}, Options{Logger: discardLogger()})
	r := e.do("POST", "/hooks/open", []byte(`{}`), nil)
	ids := r.Header.Values("X-Request-Id")
	if r.Status != 200 || len(ids) != 1 || len(ids[0]) != 32 {
		t.Fatalf("status %d, X-Request-Id %q: want one, the decision id", r.Status, ids)
	}
}
