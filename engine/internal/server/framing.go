package server

import (
	"bytes"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/httpsyntax"
)

var (
	http10           = []byte("HTTP/1.0")
	http11           = []byte("HTTP/1.1")
	contentLength    = []byte("content-length")
	transferEncoding = []byte("transfer-encoding")
	chunked          = []byte("chunked")
	hostName         = []byte("host")
	contentTypeName  = []byte("content-type")
	userAgentName    = []byte("user-agent")
	connectionName   = []byte("connection")
	schemeSep        = []byte("://")
)

// Reasons badFraming gives, as the decision log's error. They are fixed texts: nothing of
// the request (a header value, the query) is ever part of them.
const (
	reasonVersion      = "unsupported http version"
	reasonTarget       = "request target is not origin-form"
	reasonTrailers     = "trailer fields"
	reasonFolding      = "obsolete line folding in a header"
	reasonName         = "header name is not a token"
	reasonTooMany      = "too many header fields"
	reasonCLAndTE      = "both content-length and transfer-encoding"
	reasonTransferCode = "transfer-encoding other than chunked"
	reasonUnderscore   = "underscore in a header name"
	reasonHost         = "host is not uri-host[:port]"
	reasonContentType  = "repeated content-type"
	reasonUserAgent    = "repeated user-agent"
)

// badFraming returns the status and reason a request that fasthttp parsed is still refused
// with, or 0 and "" when it is fine. fasthttp is lenient where a gateway in front of other
// parsers must not be (request smuggling, RFC 9112 section 6.3 and section 5.2): it lets
// Transfer-Encoding win over a Content-Length in the same request, unfolds obs-fold lines,
// reads any HTTP/x.y version as HTTP/1.0, takes absolute-form targets, reads
// "Transfer-Encoding: identity" as no body at all (so the body is read as the next request),
// keeps header names with spaces in them, and keeps a chunked body's trailer fields apart
// from the header fields, where the policy input does not see them but the proxy forwards
// them as headers. A proxy before the gateway may read such a request differently, so it is
// answered 400 and its connection closed.
//
// The Host must be uri-host[:port] (RFC 9110 section 7.2): fasthttp reads "user:pw@host"
// as a URI's userinfo, which its client then sends as an Authorization header, and the
// route's host as the part after the "@", neither of which the policy sees. A target
// starting "//" that fasthttp reads a host from (it holds "://", or there is no Host) is
// refused; "//hooks/x" is a path with an empty segment, merged. Content-Type
// and User-Agent come once: fasthttp keeps the last copy of each only (not the joined list
// the policy gets of any other repeated name), where a proxy before the gateway may read the
// first. A field a Connection field names is reported (connNamed), for the caller to
// remove before anything runs (dropConnectionNamed): the gateway removes it before the
// upstream, so the policy must not judge the request with it (a signature header, say).
//
// Trailers are refused, not dropped: a request that announces trailer fields (a Trailer
// header) or sends any gets 400 here, before any filter or rule runs, so every field the
// upstream receives is one the policy saw. Filters cannot add trailers (the host traps).
//
// A header name with an underscore gets 400 unless dropUnderscores is set, when underscores
// reports it instead, for the caller to remove such fields: many servers read X_Foo as
// X-Foo, so the upstream would get under one name a field the policy and the headers the
// gateway strips know under another.
//
// A header block with more than maxHeaders fields (maxHeaders > 0) gets 431: every later
// stage is linear in the fields, and this bounds them. It allocates nothing.
func badFraming(h *fasthttp.RequestHeader, maxHeaders int, dropUnderscores bool) (status int, reason string, underscores, connNamed bool) {
	if p := h.Protocol(); !bytes.Equal(p, http11) && !bytes.Equal(p, http10) {
		return fasthttp.StatusBadRequest, reasonVersion, false, false
	}
	// CONNECT asks for a tunnel, and names its target in authority-form, never origin-form: a
	// "CONNECT /hooks/x" is malformed, and a 200 answer to it tells a proxy before the gateway
	// that a tunnel is open.
	if h.IsConnect() {
		return fasthttp.StatusBadRequest, reasonTarget, false, false
	}
	if uri := h.RequestURI(); len(uri) == 0 || uri[0] != '/' || (len(uri) > 1 && uri[1] == '/' && (len(h.Host()) == 0 || bytes.Contains(uri, schemeSep))) {
		// Absolute-form ("http://host/path") and asterisk-form are for proxies and OPTIONS;
		// a webhook sender uses origin-form. Accepting absolute-form would let the routing
		// host (from the target) differ from input.request.host (the Host header).
		return fasthttp.StatusBadRequest, reasonTarget, false, false
	}
	if len(h.PeekTrailerKeys()) > 0 {
		return fasthttp.StatusBadRequest, reasonTrailers, false, false
	}
	// The parsed header no longer says whether a chunked body came with a Content-Length
	// (fasthttp sets the length it read), what Transfer-Encoding said, or how many fields
	// there were, so the header block as received is scanned.
	var cl, te, ct, ua bool
	n := 0
	for raw := h.RawHeaders(); len(raw) > 0; {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, cr)
		if len(line) == 0 {
			continue // the blank line that ends the block
		}
		if line[0] == ' ' || line[0] == '\t' {
			return fasthttp.StatusBadRequest, reasonFolding, false, false
		}
		if n++; maxHeaders > 0 && n > maxHeaders {
			return fasthttp.StatusRequestHeaderFieldsTooLarge, reasonTooMany, false, false
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !httpsyntax.IsToken(line[:colon]) {
			return fasthttp.StatusBadRequest, reasonName, false, false
		}
		name := line[:colon]
		if bytes.IndexByte(name, '_') >= 0 {
			if !dropUnderscores {
				return fasthttp.StatusBadRequest, reasonUnderscore, false, false
			}
			underscores = true
		}
		cl = cl || bytes.EqualFold(name, contentLength)
		value := bytes.Trim(line[colon+1:], " \t")
		switch {
		case bytes.EqualFold(name, hostName):
			if !httpsyntax.IsHost(value) {
				return fasthttp.StatusBadRequest, reasonHost, false, false
			}
		case bytes.EqualFold(name, contentTypeName):
			if ct {
				return fasthttp.StatusBadRequest, reasonContentType, false, false
			}
			ct = true
		case bytes.EqualFold(name, userAgentName):
			if ua {
				return fasthttp.StatusBadRequest, reasonUserAgent, false, false
			}
			ua = true
		case bytes.EqualFold(name, connectionName):
			connNamed = connNamed || !onlyHopOptions(value)
		}
		if bytes.EqualFold(name, transferEncoding) {
			te = true
			// RFC 9112 section 6.3: a coding other than chunked last leaves the body's length
			// unknown; only "chunked" alone is read here (coding names are case-insensitive).
			if !bytes.EqualFold(bytes.Trim(line[colon+1:], " \t"), chunked) {
				return fasthttp.StatusBadRequest, reasonTransferCode, false, false
			}
		}
	}
	if cl && te {
		return fasthttp.StatusBadRequest, reasonCLAndTE, false, false
	}
	return 0, "", underscores, connNamed
}

var cr = []byte("\r")

// onlyHopOptions reports whether a Connection field's options name no field that
// removable says goes.
func onlyHopOptions(v []byte) bool {
	for opt := range bytes.SplitSeq(v, []byte(",")) {
		if removable(bytes.TrimSpace(opt)) {
			return false
		}
	}
	return true
}

// removable reports whether a Connection option names a field that dropConnectionNamed
// removes: not close or keep-alive, not a hop-by-hop field (removed before the upstream
// anyway; the policy may read them), not Host, Content-Length or Content-Type (endToEnd:
// never removed, RFC 9110 section 7.6.1 forbids listing them, and the upstream needs
// them), not one of the gateway's own (httpsyntax.GatewayOwned).
func removable(opt []byte) bool {
	if len(opt) == 0 || bytes.EqualFold(opt, []byte("close")) || bytes.EqualFold(opt, []byte("keep-alive")) ||
		endToEnd(opt) || httpsyntax.IsHopByHop(string(opt)) {
		return false
	}
	// The gateway's own headers: it reads X-Forwarded-For (the client behind a trusted
	// proxy, which may pass a client's Connection on) and replaces them all upstream.
	for _, o := range httpsyntax.GatewayOwned {
		if bytes.EqualFold(opt, []byte(o)) {
			return false
		}
	}
	return true
}

// dropConnectionNamed removes every field a Connection field names that removable says
// goes: the gateway removes them before the upstream (RFC 9110 section 7.6.1), and removed
// first, the policy and the filters judge the request the upstream gets.
func dropConnectionNamed(h *fasthttp.RequestHeader) {
	var names []string
	for k, v := range h.All() {
		if !bytes.EqualFold(k, connectionName) {
			continue
		}
		for opt := range bytes.SplitSeq(v, []byte(",")) {
			if opt = bytes.TrimSpace(opt); removable(opt) {
				names = append(names, string(opt))
			}
		}
	}
	for _, n := range names {
		h.Del(n)
	}
}

// dropUnderscoreFields removes every header field whose name has an underscore
// ([server] underscore_headers = "drop").
func dropUnderscoreFields(h *fasthttp.RequestHeader) {
	var names []string
	for k := range h.All() {
		if bytes.IndexByte(k, '_') >= 0 {
			names = append(names, string(k))
		}
	}
	for _, n := range names {
		h.Del(n)
	}
}
