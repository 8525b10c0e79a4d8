package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"strconv"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/decisionlog"
)

// sink is the demo upstream: it answers each request with what reached it, so a user can see
// that a forwarded body is byte-identical to what the provider signed.
func newSink() *fasthttp.Server {
	return &fasthttp.Server{
		Name:               "hookwall-demo-sink",
		MaxRequestBodySize: 8 << 20,
		Handler: func(ctx *fasthttp.RequestCtx) {
			sum := sha256.Sum256(ctx.PostBody())
			b := make([]byte, 0, 256)
			b = append(b, `{"sink":"hookwall demo","method":`...)
			b = decisionlog.AppendString(b, ctx.Method())
			b = append(b, `,"path":`...)
			b = decisionlog.AppendString(b, ctx.RequestURI())
			b = append(b, `,"bytes":`...)
			b = strconv.AppendInt(b, int64(len(ctx.PostBody())), 10)
			b = append(b, `,"sha256":"`...)
			b = hex.AppendEncode(b, sum[:])
			b = append(b, `","request_id":`...)
			b = decisionlog.AppendString(b, ctx.Request.Header.Peek("X-Request-Id"))
			b = append(b, "}\n"...)
			ctx.SetContentType("application/json")
			ctx.SetBody(b)
		},
	}
}

func serveSink(ln net.Listener, srv *fasthttp.Server) error { return srv.Serve(ln) }
