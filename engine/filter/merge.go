package filter

import "github.com/valyala/fasthttp"

// MergeResponse folds the upstream's response into dst, the exchange's
// response on which guests may already have written before returning
// next=true. It follows the net/http middleware model the http-wasm ABI is
// written against: headers the guests set stay and the upstream's are
// added, the upstream's status wins, and the upstream's body follows any
// body a guest wrote before next. Framing and hop-by-hop headers
// (Content-Length, Transfer-Encoding, Connection) are not copied; fasthttp
// computes framing when it writes dst. The server strips any other
// hop-by-hop headers before or after as its proxy rules say.
func MergeResponse(dst, upstream *fasthttp.Response) {
	dst.SetStatusCode(upstream.StatusCode())
	for k, v := range upstream.Header.All() {
		switch string(k) {
		case fasthttp.HeaderContentLength, fasthttp.HeaderTransferEncoding, fasthttp.HeaderConnection:
			continue
		case fasthttp.HeaderContentType:
			dst.Header.SetContentTypeBytes(v)
			continue
		case fasthttp.HeaderServer:
			dst.Header.SetServerBytes(v)
			continue
		}
		dst.Header.AddBytesKV(k, v)
	}
	dst.AppendBody(upstream.Body())
}
