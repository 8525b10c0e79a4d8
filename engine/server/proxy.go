package server

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/input"
	"github.com/hookwall/hookwall/engine/snapshot"
)

// hopHeaders are connection-level (RFC 9110 §7.6.1) and never forwarded.
var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// forward sends ctx.Request (as the filters left it) to the route's upstream and leaves the
// upstream's answer in ctx.Response. It returns the upstream status, or an error when no
// answer came (refused, reset, timeout).
func (s *Server) forward(ctx *fasthttp.RequestCtx, route *snapshot.Route, meta *input.Meta) (int, error) {
	req := &ctx.Request
	stripHop(&req.Header)

	// X-Forwarded-For gets the immediate peer appended; the policy's remote_ip is separate.
	peer := ctx.RemoteIP().String()
	if prior := req.Header.Peek("X-Forwarded-For"); len(prior) > 0 {
		buf := make([]byte, 0, len(prior)+2+len(peer))
		buf = append(append(append(buf, prior...), ", "...), peer...)
		req.Header.SetBytesV("X-Forwarded-For", buf)
	} else {
		req.Header.Set("X-Forwarded-For", peer)
	}
	req.Header.SetBytesV("X-Forwarded-Host", req.Header.Host())
	req.Header.Set("X-Forwarded-Proto", meta.Scheme)
	req.Header.Set("X-Request-Id", meta.ID)

	uri := req.Header.RequestURI()
	if route.BasePath != "" {
		b := make([]byte, 0, len(route.BasePath)+len(uri))
		b = append(append(b, route.BasePath...), uri...)
		uri = b
	}
	req.SetRequestURIBytes(uri)
	req.Header.SetHost(route.Host)
	req.UseHostHeader = true
	req.SetTimeout(route.Timeout)

	resp := &ctx.Response
	err := route.Client.Do(req, resp)
	if err != nil {
		return 0, err
	}
	stripHopResp(&resp.Header)
	return resp.StatusCode(), nil
}

func stripHop(h *fasthttp.RequestHeader) {
	if c := h.Peek("Connection"); len(c) > 0 {
		for _, name := range bytes.Split(c, []byte(",")) {
			if name = bytes.TrimSpace(name); len(name) > 0 {
				h.DelBytes(name)
			}
		}
	}
	for _, k := range hopHeaders {
		h.Del(k)
	}
}

func stripHopResp(h *fasthttp.ResponseHeader) {
	if c := h.Peek("Connection"); len(c) > 0 {
		for _, name := range bytes.Split(c, []byte(",")) {
			if name = bytes.TrimSpace(name); len(name) > 0 && !bytes.EqualFold(name, []byte("close")) {
				h.DelBytes(name)
			}
		}
	}
	for _, k := range hopHeaders {
		if k != "Connection" && k != "Transfer-Encoding" {
			h.Del(k)
		}
	}
}
