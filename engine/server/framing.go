package server

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

var (
	http10           = []byte("HTTP/1.0")
	http11           = []byte("HTTP/1.1")
	contentLength    = []byte("content-length")
	transferEncoding = []byte("transfer-encoding")
)

// badFraming returns why a request that fasthttp parsed is still refused, or "" when it is
// fine. fasthttp is lenient where a gateway in front of other parsers must not be (request
// smuggling, RFC 9112 §6.3 and §5.2): it lets Transfer-Encoding win over a Content-Length in
// the same request, unfolds obs-fold lines, reads any HTTP/x.y version as HTTP/1.0 and takes
// absolute-form targets. A proxy before the gateway may read such a request differently, so
// it is answered 400 and its connection closed. It allocates nothing.
func badFraming(h *fasthttp.RequestHeader) string {
	if p := h.Protocol(); !bytes.Equal(p, http11) && !bytes.Equal(p, http10) {
		return "unsupported http version"
	}
	if uri := h.RequestURI(); len(uri) == 0 || uri[0] != '/' {
		// Absolute-form ("http://host/path") and asterisk-form are for proxies and OPTIONS;
		// a webhook sender uses origin-form. Accepting absolute-form would let the routing
		// host (from the target) differ from input.request.host (the Host header).
		return "request target is not origin-form"
	}
	// The parsed header no longer says whether a chunked body came with a Content-Length
	// (fasthttp sets the length it read), so the header block as received is scanned.
	var cl, te bool
	for raw := h.RawHeaders(); len(raw) > 0; {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		if len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			return "obsolete line folding in a header"
		}
		cl = cl || isField(line, contentLength)
		te = te || isField(line, transferEncoding)
	}
	if cl && te {
		return "both content-length and transfer-encoding"
	}
	return ""
}

// isField reports whether line is a header field named name (lower-case). fasthttp has
// already refused whitespace between a name and its colon.
func isField(line, name []byte) bool {
	return len(line) > len(name) && line[len(name)] == ':' && bytes.EqualFold(line[:len(name)], name)
}
