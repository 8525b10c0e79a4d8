package gateway

import (
	"net/http"
	"testing"

	"github.com/valyala/fasthttp"
)

// TestGuestAnswerBeforeNextIsMerged: what a guest sets on the response before next (a
// header, body bytes, a status) stays in the answer, with the upstream's merged into it: the
// upstream's headers added, its body appended, and its status, which says what became of
// the request, in place of the guest's. The same whether or not the guest has a response
// phase (prenextresp keeps its instance across the upstream call and adds a header in it).
// Nothing is added that neither sent: an answer without a Content-Type gets none.
func TestGuestAnswerBeforeNextIsMerged(t *testing.T) {
	e, up := startReload(t, "", prenextConfig, map[string]string{
		"filters/prenext.wasm":      testGuest(t, "prenext.wasm"),
		"filters/prenextresp.wasm":  testGuest(t, "prenextresp.wasm"),
		"policies/routes/open.rego": "package routes.open\n\nallow := true\n",
	}, Options{})
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		ctx.SetStatusCode(201)
		ctx.Response.Header.Set("X-Up", "1")
		ctx.Response.Header.SetNoDefaultContentType(true) // an answer with no Content-Type gets none
		ctx.SetBodyString("upstream")
	})
	for _, c := range []struct {
		path, phase string
	}{{"/hooks/prenext", ""}, {"/hooks/prenextresp", "ran"}} {
		r := e.do(http.MethodPost, c.path, []byte("{}"), nil)
		if ct, ok := r.Header["Content-Type"]; ok {
			t.Errorf("%s: Content-Type %q, which neither the guest nor the upstream sent", c.path, ct)
		}
		if r.Status != 201 || r.Body != "guest;upstream" || r.Header.Get("X-Guest") != "before" || r.Header.Get("X-Up") != "1" ||
			r.Header.Get("X-Response-Phase") != c.phase {
			t.Errorf("%s: status %d, body %q, X-Guest %q, X-Up %q, X-Response-Phase %q; want 201, %q, before, 1, %q",
				c.path, r.Status, r.Body, r.Header.Get("X-Guest"), r.Header.Get("X-Up"), r.Header.Get("X-Response-Phase"), "guest;upstream", c.phase)
		}
	}
	if n := len(up.requests()); n != 2 {
		t.Errorf("the upstream got %d requests, want 2 (each guest forwards)", n)
	}
}

const prenextConfig = `
[[filter]]
name = "prenext"
module = "filters/prenext.wasm"

[[filter]]
name = "prenextresp"
module = "filters/prenextresp.wasm"

[[route]]
name = "prenext"
path = "/hooks/prenext"
upstream = "{{UPSTREAM}}"
policy = "routes.open"
filters = ["prenext"]

[[route]]
name = "prenextresp"
path = "/hooks/prenextresp"
upstream = "{{UPSTREAM}}"
policy = "routes.open"
filters = ["prenextresp"]
`
