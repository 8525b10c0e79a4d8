package sdk

import (
	"bytes"
	"unsafe"
)

// LogLevel is an http-wasm log level. Lower is more verbose.
type LogLevel int32

// Log levels, numbered as the http-wasm ABI numbers them.
const (
	LevelDebug LogLevel = -1
	LevelInfo  LogLevel = 0
	LevelWarn  LogLevel = 1
	LevelError LogLevel = 2
)

// Features is the http-wasm feature bit set (enable_features).
type Features uint32

// Feature bits, as numbered by the http-wasm ABI.
const (
	// FeatureBufferRequest keeps the request body readable by the next
	// handler after the guest read it, and by the response phase. The SDK
	// enables it before the first body read of a request, and before the
	// Handler runs when a ResponseHandler is registered.
	FeatureBufferRequest Features = 1 << iota
	// FeatureBufferResponse lets the response phase read and rewrite the
	// upstream's response. The SDK enables it on every request, before the
	// Handler runs, when a ResponseHandler is registered.
	FeatureBufferResponse
	// FeatureTrailers exposes HTTP trailers; the SDK does not use them.
	FeatureTrailers
)

// Header kinds and body kinds of the ABI.
const (
	kindRequest  uint32 = 0
	kindResponse uint32 = 1
)

// Handler handles a request. It returns true to forward the request to the
// next stage, false to end it with the response written through resp.
type Handler func(req Request, resp Response) (next bool)

// ResponseHandler handles the upstream's response of a request whose Handler
// returned true. isError reports that the host failed to produce a response.
type ResponseHandler func(req Request, resp Response, isError bool)

// Guest state. A wasm instance is single-threaded and has exactly one copy of
// it; see the package notes for the native build.
var (
	reqHandler  Handler
	respHandler ResponseHandler
	// scratch receives every (buf, buf_limit) result; it grows to the largest
	// value seen and is reused, so steady-state reads do not allocate.
	scratch = make([]byte, 512)
	bodies  [2]bodyState
	// enabled holds the features the host reported enabled for this request,
	// so each costs one host call per request at most.
	enabled Features
)

// bodyState caches one body for the current phase: the ABI body is a stream
// that can be read once, so Body must remember what it read.
type bodyState struct {
	buf     []byte
	done    bool // the stream is exhausted, buf holds the rest of the body
	written bool // a write happened in this phase, later writes append
}

// maxKeptBody bounds the body buffer an instance keeps between requests.
const maxKeptBody = 1 << 20

// Handle registers the request handler. Call it from init.
func Handle(h Handler) { reqHandler = h }

// HandleResponse registers the response handler. Call it from init. With one
// registered, every request asks the host, before the Handler runs, to buffer
// the upstream's response and the request body: the host takes features only
// before next, and the response handler may read both.
func HandleResponse(h ResponseHandler) { respHandler = h }

// Configure registers fn to parse the filter's configuration (the `config`
// string of its [[filter]] table). Call it from init: in a wasm instance fn
// runs at once, during instantiation, and an error traps _initialize, so a bad
// config fails when the gateway loads the filter rather than on a request.
// In the native build, sdktest.New runs it with the test's config.
func Configure(fn func(config []byte) error) { registerConfigure(fn) }

// Config returns a copy of the filter's configuration; nil when empty.
func Config() []byte {
	b := getBytes(abiGetConfig)
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// Log writes msg to the host's log at level.
func Log(level LogLevel, msg string) { abiLog(int32(level), msg) }

// LogEnabled reports whether the host would keep a message at level, so a
// guest can skip building one.
func LogEnabled(level LogLevel) bool { return abiLogEnabled(int32(level)) }

// EnableFeatures asks the host for features and returns the ones enabled.
// The host grants a feature only before next (from init or a Handler); in a
// ResponseHandler it grants nothing new and returns those enabled before.
// The SDK enables what it needs itself.
func EnableFeatures(f Features) Features {
	enabled = Features(abiEnableFeatures(uint32(f)))
	return enabled
}

// SetLabel reports key=value to the policy, which sees it at
// input.filters.<filter name>.labels. A later value for a key replaces it.
// Call it from a Handler: the policy has decided by the time a
// ResponseHandler runs, and the host traps a label set there. Uses the
// hookwall host module.
func SetLabel(key, value string) { abiSetLabel(key, value) }

// Route returns the name of the route the request matched. Uses the hookwall
// host module.
func Route() string { return string(getBytes(abiGetRoute)) }

// Deny ends the request: it sets the response status and a text/plain body,
// and returns false so a handler can `return sdk.Deny(403, "…")`. The body is
// written as Response.SetBody's later writes are: after a body the handler
// already wrote to the response, not in its place, so call Deny before any
// other write to the response body.
func Deny(status int, body string) bool {
	abiSetStatusCode(uint32(status))
	abiSetHeaderValue(kindResponse, "Content-Type", "text/plain; charset=utf-8")
	if body != "" {
		writeBody(kindResponse, stringBytes(body)) // so Response.Body reads what is sent
	}
	return false
}

// Request is the handle to the request being handled; its zero value is
// that handle. See the package contract for when it is valid.
type Request struct{}

// Method returns the request method, e.g. "POST".
func (Request) Method() string { return internMethod(getBytes(abiGetMethod)) }

// SetMethod changes the method of the forwarded request.
func (Request) SetMethod(method string) { abiSetMethod(method) }

// URI returns the request URI: path and query, e.g. "/hooks/gh?x=1".
func (Request) URI() string { return string(getBytes(abiGetURI)) }

// SetURI changes the URI (path and query) of the forwarded request.
func (Request) SetURI(uri string) { abiSetURI(uri) }

// ProtocolVersion returns e.g. "HTTP/1.1".
func (Request) ProtocolVersion() string {
	b := getBytes(abiGetProtocolVersion)
	switch string(b) {
	case "HTTP/1.1":
		return "HTTP/1.1"
	case "HTTP/2.0":
		return "HTTP/2.0"
	}
	return string(b)
}

// SourceAddr returns the connection's peer, "ip:port": a proxy's, behind one (the client's IP is the policy's input.request.remote_ip).
func (Request) SourceAddr() string { return string(getBytes(abiGetSourceAddr)) }

// Header returns the first value of the named request header, or "".
// Names are case-insensitive.
func (Request) Header(name string) string { return headerFirst(kindRequest, name) }

// HeaderValues returns every value of the named request header, or nil.
func (Request) HeaderValues(name string) []string { return headerValues(kindRequest, name) }

// HeaderNames returns the names of the request headers.
func (Request) HeaderNames() []string { return headerNames(kindRequest) }

// SetHeader replaces the named request header with one value.
func (Request) SetHeader(name, value string) { abiSetHeaderValue(kindRequest, name, value) }

// AddHeader adds a value to the named request header.
func (Request) AddHeader(name, value string) { abiAddHeaderValue(kindRequest, name, value) }

// RemoveHeader removes the named request header.
func (Request) RemoveHeader(name string) { abiRemoveHeader(kindRequest, name) }

// Body returns the rest of the request body: all of it unless ReadBody
// consumed a part. The slice is the SDK's, valid until the handler returns or
// SetBody reuses its array; the guest may modify it (and pass it to SetBody).
func (Request) Body() []byte { return readAll(kindRequest) }

// ReadBody reads the next part of the request body into p, for guests that
// stream instead of holding the whole body. eof reports the end.
func (Request) ReadBody(p []byte) (n int, eof bool) { return readSome(kindRequest, p) }

// SetBody replaces the body of the forwarded request with b. As in the ABI
// the first write of a handler replaces the body and later writes append.
func (Request) SetBody(b []byte) { writeBody(kindRequest, b) }

// Response is the handle to the response: the one the guest writes when it
// denies, or the upstream's in the response phase. Its zero value is that
// handle.
type Response struct{}

// StatusCode returns the response status code.
func (Response) StatusCode() int { return int(abiGetStatusCode()) }

// SetStatusCode sets the response status code.
func (Response) SetStatusCode(code int) { abiSetStatusCode(uint32(code)) }

// Header returns the first value of the named response header, or "".
func (Response) Header(name string) string { return headerFirst(kindResponse, name) }

// HeaderValues returns every value of the named response header, or nil.
func (Response) HeaderValues(name string) []string { return headerValues(kindResponse, name) }

// HeaderNames returns the names of the response headers.
func (Response) HeaderNames() []string { return headerNames(kindResponse) }

// SetHeader replaces the named response header with one value.
func (Response) SetHeader(name, value string) { abiSetHeaderValue(kindResponse, name, value) }

// AddHeader adds a value to the named response header.
func (Response) AddHeader(name, value string) { abiAddHeaderValue(kindResponse, name, value) }

// RemoveHeader removes the named response header.
func (Response) RemoveHeader(name string) { abiRemoveHeader(kindResponse, name) }

// Body returns the rest of the response body, like Request.Body. In the
// request phase it is what the guest wrote so far (usually empty).
func (Response) Body() []byte { return readAll(kindResponse) }

// ReadBody reads the next part of the response body into p.
func (Response) ReadBody(p []byte) (n int, eof bool) { return readSome(kindResponse, p) }

// SetBody replaces the response body with b (first write of a handler
// replaces, later writes append).
func (Response) SetBody(b []byte) { writeBody(kindResponse, b) }

// onHandleRequest is the body of the handle_request export.
func onHandleRequest() uint64 {
	startPhase()
	enabled = 0
	if respHandler != nil {
		// Before next, the only time the host takes them: the response handler may read
		// the request body and change the upstream's answer.
		enable(FeatureBufferRequest | FeatureBufferResponse)
	}
	if reqHandler == nil || reqHandler(Request{}, Response{}) {
		return 1 // next=1; the ctx half is unused
	}
	return 0
}

// onHandleResponse is the body of the handle_response export.
func onHandleResponse(isError bool) {
	startPhase()
	if respHandler != nil {
		respHandler(Request{}, Response{}, isError)
	}
}

func startPhase() {
	for i := range bodies {
		b := &bodies[i]
		if cap(b.buf) > maxKeptBody {
			b.buf = nil
		}
		b.buf, b.done, b.written = b.buf[:0], false, false
	}
}

func enable(f Features) {
	if enabled&f != f {
		EnableFeatures(f)
	}
}

// getBytes runs one (buf, buf_limit) -> len function, growing scratch and
// retrying when the value did not fit (the host then wrote nothing).
func getBytes(fn func(buf []byte) uint32) []byte {
	for {
		n := fn(scratch)
		if int(n) <= len(scratch) {
			return scratch[:n]
		}
		growScratch(int(n))
	}
}

// getList is getBytes for the (…, buf, buf_limit) -> count<<32|len
// functions that return NUL-terminated lists.
func getList(kind uint32, name string, names bool) (count int, b []byte) {
	for {
		var cl uint64
		if names {
			cl = abiGetHeaderNames(kind, scratch)
		} else {
			cl = abiGetHeaderValues(kind, name, scratch)
		}
		n := int(uint32(cl))
		if n <= len(scratch) {
			return int(cl >> 32), scratch[:n]
		}
		growScratch(n)
	}
}

func growScratch(n int) {
	scratch = make([]byte, max(n, 2*len(scratch)))
}

func headerFirst(kind uint32, name string) string {
	count, b := getList(kind, name, false)
	if count == 0 {
		return ""
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

func headerValues(kind uint32, name string) []string {
	return splitList(getList(kind, name, false))
}

func headerNames(kind uint32) []string {
	return splitList(getList(kind, "", true))
}

func splitList(count int, b []byte) []string {
	if count == 0 {
		return nil
	}
	out := make([]string, 0, count)
	for len(b) > 0 && len(out) < count {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			i = len(b)
		}
		out = append(out, string(b[:i]))
		b = b[min(i+1, len(b)):]
	}
	return out
}

// minRead is the smallest free space offered to read_body.
const minRead = 4 << 10

func readAll(kind uint32) []byte {
	b := &bodies[kind]
	if b.done {
		return b.buf
	}
	if kind == kindRequest {
		enable(FeatureBufferRequest)
	}
	for {
		if cap(b.buf)-len(b.buf) < minRead {
			nb := make([]byte, len(b.buf), max(2*cap(b.buf), len(b.buf)+minRead))
			copy(nb, b.buf)
			b.buf = nb
		}
		free := b.buf[len(b.buf):cap(b.buf)]
		el := abiReadBody(kind, free)
		b.buf = b.buf[:len(b.buf)+int(uint32(el))]
		if el>>32 != 0 {
			b.done = true
			return b.buf
		}
	}
}

func readSome(kind uint32, p []byte) (int, bool) {
	b := &bodies[kind]
	if b.done {
		return 0, true
	}
	if len(p) == 0 {
		return 0, false // read_body traps on a zero limit
	}
	if kind == kindRequest {
		enable(FeatureBufferRequest)
	}
	el := abiReadBody(kind, p)
	eof := el>>32 != 0
	if eof {
		b.done = true
	}
	return int(uint32(el)), eof
}

func writeBody(kind uint32, p []byte) {
	abiWriteBody(kind, p)
	b := &bodies[kind]
	if !b.written {
		// p may alias b.buf (a guest editing Body() in place); append copies
		// with memmove, which is correct for overlapping ranges.
		b.buf = b.buf[:0]
		b.written = true
	}
	b.buf = append(b.buf, p...)
	b.done = true
}

// internMethod avoids allocating for the common methods.
func internMethod(b []byte) string {
	switch string(b) {
	case "POST":
		return "POST"
	case "GET":
		return "GET"
	case "PUT":
		return "PUT"
	case "PATCH":
		return "PATCH"
	case "DELETE":
		return "DELETE"
	case "HEAD":
		return "HEAD"
	case "OPTIONS":
		return "OPTIONS"
	}
	return string(b)
}

// stringBytes views s as bytes without copying, for ABI writes, which only
// read guest memory.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
