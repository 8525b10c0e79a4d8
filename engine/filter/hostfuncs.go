package filter

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"log/slog"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/hookwall/hookwall/engine/internal/httpsyntax"
)

// instanceKey carries the calling *Instance in the context of every guest
// call. Host modules are shared by all guests of a runtime, so the context
// is how a host function finds its request; it also works while the start
// function runs, before the instance is registered anywhere.
type instanceKey struct{}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// instantiateHostModules defines the http_handler and hookwall modules in rt.
// Functions use WithGoFunction/WithGoModuleFunction: no reflection, the
// stack is read and written in place.
func instantiateHostModules(ctx context.Context, rt wazero.Runtime) error {
	type def struct {
		name    string
		fn      any
		params  []api.ValueType
		results []api.ValueType
		names   []string
	}
	p := func(t ...api.ValueType) []api.ValueType { return t }
	build := func(module string, defs []def) error {
		b := rt.NewHostModuleBuilder(module)
		for _, d := range defs {
			fb := b.NewFunctionBuilder()
			switch fn := d.fn.(type) {
			case api.GoFunc:
				fb = fb.WithGoFunction(fn, d.params, d.results)
			case api.GoModuleFunc:
				fb = fb.WithGoModuleFunction(fn, d.params, d.results)
			default:
				panic(fmt.Sprintf("filter: host function %s has type %T", d.name, d.fn))
			}
			fb.WithParameterNames(d.names...).Export(d.name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("filter: instantiate host module %s: %w", module, err)
		}
		return nil
	}
	err := build(moduleHTTPHandler, []def{
		{fnEnableFeatures, api.GoFunc(hostEnableFeatures), p(i32), p(i32), []string{"features"}},
		{fnGetConfig, api.GoModuleFunc(hostGetConfig), p(i32, i32), p(i32), []string{"buf", "buf_limit"}},
		{fnLogEnabled, api.GoFunc(hostLogEnabled), p(i32), p(i32), []string{"level"}},
		{fnLog, api.GoModuleFunc(hostLog), p(i32, i32, i32), nil, []string{"level", "message", "message_len"}},
		{fnGetMethod, api.GoModuleFunc(hostGetMethod), p(i32, i32), p(i32), []string{"buf", "buf_limit"}},
		{fnSetMethod, api.GoModuleFunc(hostSetMethod), p(i32, i32), nil, []string{"method", "method_len"}},
		{fnGetURI, api.GoModuleFunc(hostGetURI), p(i32, i32), p(i32), []string{"buf", "buf_limit"}},
		{fnSetURI, api.GoModuleFunc(hostSetURI), p(i32, i32), nil, []string{"uri", "uri_len"}},
		{fnGetProtocolVersion, api.GoModuleFunc(hostGetProtocolVersion), p(i32, i32), p(i32), []string{"buf", "buf_limit"}},
		{fnGetHeaderNames, api.GoModuleFunc(hostGetHeaderNames), p(i32, i32, i32), p(i64), []string{"kind", "buf", "buf_limit"}},
		{fnGetHeaderValues, api.GoModuleFunc(hostGetHeaderValues), p(i32, i32, i32, i32, i32), p(i64), []string{"kind", "name", "name_len", "buf", "buf_limit"}},
		{fnSetHeaderValue, api.GoModuleFunc(hostSetHeaderValue), p(i32, i32, i32, i32, i32), nil, []string{"kind", "name", "name_len", "value", "value_len"}},
		{fnAddHeaderValue, api.GoModuleFunc(hostAddHeaderValue), p(i32, i32, i32, i32, i32), nil, []string{"kind", "name", "name_len", "value", "value_len"}},
		{fnRemoveHeader, api.GoModuleFunc(hostRemoveHeader), p(i32, i32, i32), nil, []string{"kind", "name", "name_len"}},
		{fnReadBody, api.GoModuleFunc(hostReadBody), p(i32, i32, i32), p(i64), []string{"kind", "buf", "buf_limit"}},
		{fnWriteBody, api.GoModuleFunc(hostWriteBody), p(i32, i32, i32), nil, []string{"kind", "body", "body_len"}},
		{fnGetStatusCode, api.GoFunc(hostGetStatusCode), nil, p(i32), nil},
		{fnSetStatusCode, api.GoFunc(hostSetStatusCode), p(i32), nil, []string{"status_code"}},
		{fnGetSourceAddr, api.GoModuleFunc(hostGetSourceAddr), p(i32, i32), p(i32), []string{"buf", "buf_limit"}},
	})
	if err != nil {
		return err
	}
	return build(moduleHookwall, []def{
		{fnSetLabel, api.GoModuleFunc(hostSetLabel), p(i32, i32, i32, i32), nil, []string{"key", "key_len", "value", "value_len"}},
		{fnGetRoute, api.GoModuleFunc(hostGetRoute), p(i32, i32), p(i32), []string{"buf", "buf_limit"}},
	})
}

// --- helpers -----------------------------------------------------------------

// callingInstance returns the instance whose call this is. Once the call's deadline has
// passed it ends the call as wazero's interrupt would (a timeout): a guest compiled without
// interrupt checks (boundedGuest) can outrun its deadline only by its bounded instructions and
// the host call under way, and one with them is stopped here before its next host call's work.
func callingInstance(ctx context.Context, fn string) *Instance {
	var i *Instance
	if c, ok := ctx.(*callContext); ok {
		// A guest call's own context, as wazero hands it to the host function: read
		// directly, not through Value (an interface call and a comparison of the key as an
		// interface, on every host call).
		i = c.inst
	} else {
		i, _ = ctx.Value(instanceKey{}).(*Instance)
	}
	if i == nil {
		abiPanic(fn, "called outside a filter call")
	}
	if i.cctx.expired.Load() {
		panic(sys.NewExitError(sys.ExitCodeDeadlineExceeded))
	}
	return i
}

// exchange returns the request being handled, trapping when the guest calls a
// request function from its start function.
func (i *Instance) exchange(fn string) *Exchange {
	if i.ex == nil {
		abiPanic(fn, "called outside a request")
	}
	return i.ex
}

// mustBeforeNext traps unless the guest is still in handle_request.
func (i *Instance) mustBeforeNext(fn string) {
	if i.afterNext {
		abiPanic(fn, "not allowed after next")
	}
}

// mustBeforeNextOr traps after next unless the guest enabled feature.
func (i *Instance) mustBeforeNextOr(fn string, feature uint32) {
	if i.afterNext && i.features&feature == 0 {
		abiPanic(fn, "not allowed after next without the buffer feature")
	}
}

// region returns guest memory [off, off+n) or traps the guest. The slice is
// a view: valid only until the guest runs again (memory.grow may move it).
func region(mod api.Module, fn string, off, n uint32) []byte {
	if n == 0 {
		return nil
	}
	mem := mod.Memory()
	if mem == nil {
		abiPanic(fn, "guest has no memory")
	}
	b, ok := mem.Read(off, n)
	if !ok {
		abiPanic(fn, "memory region out of range")
	}
	return b
}

// writeLimited implements (buf, buf_limit) → len: the whole declared buffer
// must lie in guest memory; v is written only when it fits, and its length
// is returned either way so the guest can retry with a larger buffer.
func writeLimited[T string | []byte](mod api.Module, fn string, buf, limit uint32, v T) uint32 {
	dst := region(mod, fn, buf, limit)
	n := uint64(len(v))
	if n > 0xffffffff {
		abiPanic(fn, "value longer than 4 GiB")
	}
	if n <= uint64(limit) {
		copy(dst, v)
	}
	return uint32(n)
}

var connectMethod = []byte("CONNECT")

// isOriginForm reports whether b is an origin-form request target (RFC 9112 section 3.2.1):
// it starts with '/' and holds only the characters RFC 3986 allows in a path and a query:
// unreserved, sub-delims, ':', '@', '/', '?', and '%' followed by two hex digits. So no
// whitespace, control characters, bytes over 0x7e, fragment, or '"', '<', '>', '\', which
// servers and proxies read differently. In the query, '[', ']', '{', '}', '|', '^' and '`'
// pass too: senders leave them unencoded there (a[]=1), the gateway forwards a client's
// query with them as received, and a filter that keeps the client's query must be able to.
func isOriginForm(b []byte) bool {
	if len(b) == 0 || b[0] != '/' {
		return false
	}
	inQuery := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '%':
			if i+2 >= len(b) || !isHexDigit(b[i+1]) || !isHexDigit(b[i+2]) {
				return false
			}
			i += 2
		case c == '?':
			inQuery = true
		case targetChar[c], inQuery && queryChar[c]:
		default:
			return false
		}
	}
	return true
}

// queryChar marks the bytes a query may hold beside targetChar's (isOriginForm). Read-only.
var queryChar = func() (t [256]bool) {
	for _, c := range []byte("[]{}|^`") {
		t[c] = true
	}
	return t
}()

// targetChar marks the bytes an origin-form target may hold as they are (isOriginForm; '%'
// starts a pct-encoded byte). Read-only.
var targetChar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range []byte("-._~!$&'()*+,;=:@/?") {
		t[c] = true
	}
	return t
}()

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func equalFoldASCII(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for j := range a {
		x, y := a[j], b[j]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// scanNames is how many distinct names appendNames finds repeats of by scanning the list;
// past it, a set. A request's own headers are fewer (max_headers, 100 by default, most of
// them distinct below it), but a guest may add thousands, and a scan for each would make one
// host call, which no deadline interrupts, cost their square.
const scanNames = 32

// appendNames appends the distinct header names of seq, lower-cased and
// NUL-terminated, to dst, and returns how many it appended.
func appendNames(dst []byte, seq iter.Seq2[[]byte, []byte]) ([]byte, uint32) {
	start := len(dst)
	var count uint32
	var seen map[string]struct{} // the names, once there are more than scanNames
	for k := range seq {
		at := len(dst)
		for _, c := range k {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		if seen == nil && count < scanNames {
			if hasName(dst[start:at], k) {
				dst = dst[:at]
				continue
			}
		} else {
			if seen == nil {
				seen = make(map[string]struct{}, 2*scanNames)
				for list := dst[start:at]; len(list) > 0; {
					end := bytes.IndexByte(list, 0)
					seen[string(list[:end])] = struct{}{}
					list = list[end+1:]
				}
			}
			if _, dup := seen[string(dst[at:])]; dup {
				dst = dst[:at]
				continue
			}
			seen[string(dst[at:])] = struct{}{}
		}
		dst = append(dst, 0)
		count++
	}
	return dst, count
}

// hasName reports whether the NUL-terminated lower-case list holds name.
func hasName(list, name []byte) bool {
	for len(list) > 0 {
		end := 0
		for list[end] != 0 {
			end++
		}
		if equalFoldASCII(list[:end], name) {
			return true
		}
		list = list[end+1:]
	}
	return false
}

// appendValues appends every value of name in seq, NUL-terminated, to dst.
func appendValues(dst []byte, seq iter.Seq2[[]byte, []byte], name []byte) ([]byte, uint32) {
	var count uint32
	for k, v := range seq {
		if equalFoldASCII(k, name) {
			dst = append(dst, v...)
			dst = append(dst, 0)
			count++
		}
	}
	return dst, count
}

func (i *Instance) headers(fn string, kind uint32) iter.Seq2[[]byte, []byte] {
	ex := i.exchange(fn)
	switch kind {
	case headerKindRequest:
		return ex.Req.Header.All()
	case headerKindResponse:
		return ex.Resp.Header.All()
	case headerKindRequestTrailers, headerKindResponseTrailers:
		return nil
	}
	abiPanic(fn, "unknown header kind")
	return nil
}

// mutableHeaders checks that the guest may change headers of kind now.
func (i *Instance) mutableHeaders(fn string, kind uint32) {
	switch kind {
	case headerKindRequest:
		i.mustBeforeNext(fn)
	case headerKindResponse:
		i.mustBeforeNextOr(fn, featureBufferResponse)
	case headerKindRequestTrailers, headerKindResponseTrailers:
		abiPanic(fn, "trailers are not supported")
	default:
		abiPanic(fn, "unknown header kind")
	}
}

func slogLevel(level int32) slog.Level {
	switch {
	case level <= logLevelDebug:
		return slog.LevelDebug
	case level == logLevelInfo:
		return slog.LevelInfo
	case level == logLevelWarn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// --- http_handler -------------------------------------------------------------

// hostEnableFeatures grants what the guest asks of supportedFeatures: from the start function
// for every request of the instance, in handle_request for that request. After next it grants
// nothing new and returns the features enabled before it: http-wasm takes a feature only
// before handle_request returns, and the response may change only when buffer_response was
// enabled then (a guest enabling it in handle_response would rewrite an answer it let
// through unbuffered).
func hostEnableFeatures(ctx context.Context, stack []uint64) {
	i := callingInstance(ctx, fnEnableFeatures)
	want := uint32(stack[0]) & supportedFeatures
	if i.afterNext {
		stack[0] = uint64(i.features)
		return
	}
	if i.ex == nil {
		// From the start function: applies to every request of the instance.
		i.baseFeatures |= want
		stack[0] = uint64(i.baseFeatures)
		return
	}
	i.features |= want
	stack[0] = uint64(i.features)
}

func hostGetConfig(ctx context.Context, mod api.Module, stack []uint64) {
	i := callingInstance(ctx, fnGetConfig)
	stack[0] = uint64(writeLimited(mod, fnGetConfig, uint32(stack[0]), uint32(stack[1]), i.f.config))
}

func hostLogEnabled(ctx context.Context, stack []uint64) {
	i := callingInstance(ctx, fnLogEnabled)
	level := int32(uint32(stack[0]))
	if level >= logLevelNone || !i.f.logger.Enabled(ctx, slogLevel(level)) {
		stack[0] = 0
		return
	}
	stack[0] = 1
}

func hostLog(ctx context.Context, mod api.Module, stack []uint64) {
	i := callingInstance(ctx, fnLog)
	level := int32(uint32(stack[0]))
	msg := region(mod, fnLog, uint32(stack[1]), uint32(stack[2]))
	if level >= logLevelNone || !i.f.logger.Enabled(ctx, slogLevel(level)) {
		return
	}
	cut := 0
	if len(msg) > logMessageLimit {
		msg, cut = msg[:logMessageLimit], len(msg)-logMessageLimit
	}
	if !i.admitLog(ctx, len(msg)) {
		i.f.dropLog(ctx, cut)
		return
	}
	if cut > 0 {
		i.f.dropLog(ctx, cut)
		i.f.logger.Log(ctx, slogLevel(level), string(msg), "source", "guest", "truncated", true)
		return
	}
	i.f.logger.Log(ctx, slogLevel(level), string(msg), "source", "guest")
}

func hostGetMethod(ctx context.Context, mod api.Module, stack []uint64) {
	ex := callingInstance(ctx, fnGetMethod).exchange(fnGetMethod)
	stack[0] = uint64(writeLimited(mod, fnGetMethod, uint32(stack[0]), uint32(stack[1]), ex.Req.Header.Method()))
}

func hostSetMethod(ctx context.Context, mod api.Module, stack []uint64) {
	i := callingInstance(ctx, fnSetMethod)
	ex := i.exchange(fnSetMethod)
	i.mustBeforeNext(fnSetMethod)
	m := region(mod, fnSetMethod, uint32(stack[0]), uint32(stack[1]))
	if !httpsyntax.IsToken(m) {
		abiPanic(fnSetMethod, "method is not an HTTP token")
	}
	if equalFoldASCII(m, connectMethod) {
		// CONNECT's target is an authority, not the origin-form the request keeps: the
		// upstream would be asked for a tunnel the policy never judged.
		abiPanic(fnSetMethod, "method CONNECT is not allowed")
	}
	ex.Req.Header.SetMethodBytes(m)
}

func hostGetURI(ctx context.Context, mod api.Module, stack []uint64) {
	ex := callingInstance(ctx, fnGetURI).exchange(fnGetURI)
	uri := ex.Req.Header.RequestURI()
	if len(uri) == 0 || uri[0] != '/' {
		// Absolute-form or "*": the ABI's URI is path and query only.
		uri = ex.Req.URI().RequestURI()
	}
	stack[0] = uint64(writeLimited(mod, fnGetURI, uint32(stack[0]), uint32(stack[1]), uri))
}

func hostSetURI(ctx context.Context, mod api.Module, stack []uint64) {
	i := callingInstance(ctx, fnSetURI)
	ex := i.exchange(fnSetURI)
	i.mustBeforeNext(fnSetURI)
	uri := region(mod, fnSetURI, uint32(stack[0]), uint32(stack[1]))
	if len(uri) == 0 {
		ex.Req.SetRequestURI("/")
		return
	}
	if !isOriginForm(uri) {
		abiPanic(fnSetURI, "uri must be a path starting with '/', with an optional query, of the characters RFC 3986 allows")
	}
	ex.Req.SetRequestURIBytes(uri)
}

func hostGetProtocolVersion(ctx context.Context, mod api.Module, stack []uint64) {
	ex := callingInstance(ctx, fnGetProtocolVersion).exchange(fnGetProtocolVersion)
	stack[0] = uint64(writeLimited(mod, fnGetProtocolVersion, uint32(stack[0]), uint32(stack[1]), ex.Req.Header.Protocol()))
}

func hostGetHeaderNames(ctx context.Context, mod api.Module, stack []uint64) {
	i := callingInstance(ctx, fnGetHeaderNames)
	seq := i.headers(fnGetHeaderNames, uint32(stack[0]))
	buf, limit := uint32(stack[1]), uint32(stack[2])
	var count uint32
	list := i.scratch[:0]
	if seq != nil {
		list, count = appendNames(list, seq)
	}
	i.scratch = list
	stack[0] = writeList(mod, fnGetHeaderNames, buf, limit, list, count)
}

func hostGetHeaderValues(ctx context.Context, mod api.Module, stack []uint64) {
	i := callingInstance(ctx, fnGetHeaderValues)
	seq := i.headers(fnGetHeaderValues, uint32(stack[0]))
	name := region(mod, fnGetHeaderValues, uint32(stack[1]), uint32(stack[2]))
	if len(name) == 0 {
		abiPanic(fnGetHeaderValues, "empty header name")
	}
	buf, limit := uint32(stack[3]), uint32(stack[4])
	var count uint32
	list := i.scratch[:0]
	if seq != nil {
		list, count = appendValues(list, seq, name)
	}
	i.scratch = list
	stack[0] = writeList(mod, fnGetHeaderValues, buf, limit, list, count)
}

// writeList writes a NUL-terminated list when it fits and returns
// count<<32 | len, which the guest gets whether or not it was written.
func writeList(mod api.Module, fn string, buf, limit uint32, list []byte, count uint32) uint64 {
	n := writeLimited(mod, fn, buf, limit, list)
	if count == 0 {
		return 0
	}
	return uint64(count)<<32 | uint64(n)
}

// headerArgs reads and checks the name and value of a header mutation.
var trailerName = []byte("Trailer")

func headerArgs(mod api.Module, fn string, stack []uint64, withValue bool) (name, value []byte) {
	name = region(mod, fn, uint32(stack[1]), uint32(stack[2]))
	if !httpsyntax.IsToken(name) {
		abiPanic(fn, "header name is not an HTTP token")
	}
	if withValue {
		value = region(mod, fn, uint32(stack[3]), uint32(stack[4]))
		if !httpsyntax.IsFieldValue(value) {
			abiPanic(fn, "header value has control characters")
		}
	}
	return name, value
}

func hostSetHeaderValue(ctx context.Context, mod api.Module, stack []uint64) {
	writeHeader(ctx, mod, stack, fnSetHeaderValue, false)
}

func hostAddHeaderValue(ctx context.Context, mod api.Module, stack []uint64) {
	writeHeader(ctx, mod, stack, fnAddHeaderValue, true)
}

// writeHeader sets (or, with add, adds) the guest's header on the request or the response.
func writeHeader(ctx context.Context, mod api.Module, stack []uint64, fn string, add bool) {
	i := callingInstance(ctx, fn)
	ex := i.exchange(fn)
	kind := uint32(stack[0])
	i.mutableHeaders(fn, kind)
	name, value := headerArgs(mod, fn, stack, true)
	if equalFoldASCII(name, trailerName) {
		// Announced through the header kind, fasthttp would send the named fields as a
		// chunked answer's trailer section: trailers are not supported, whichever way.
		abiPanic(fn, "trailers are not supported")
	}
	i.chargeHeader(fn, name, value)
	// A set replaces every value of the name, as the ABI says: every value is deleted, then
	// the new one added. fasthttp's own Set does not: it overwrites the first of several
	// values and keeps the others, merges a request's Cookie into the cookies already there,
	// and adds a Set-Cookie beside the response's others.
	if kind == headerKindRequest {
		if !add {
			ex.Req.Header.DelBytes(name)
		}
		ex.Req.Header.AddBytesKV(name, value)
		return
	}
	if !add {
		ex.Resp.Header.DelBytes(name)
	}
	ex.Resp.Header.AddBytesKV(name, value)
	ex.RespChanged = true
}

// maxAddedHeaderBytes bounds the header bytes one request's guest may add: the host's memory
// is not the guest's, and a loop of add_header_value calls would otherwise grow it within a
// single call deadline (or without bound under NoDeadline). Each header is counted with
// addedHeaderOverhead bytes besides its name and value, about what the host keeps for one
// (fasthttp's entry and its own copy of the name): a million one-byte headers took some
// 70 MiB of host memory when only their bytes were counted.
const (
	maxAddedHeaderBytes = 1 << 20
	addedHeaderOverhead = 64
)

func (i *Instance) chargeHeader(fn string, name, value []byte) {
	i.addedHeaders += len(name) + len(value) + addedHeaderOverhead
	if i.addedHeaders > maxAddedHeaderBytes {
		abiPanic(fn, "guest added more than 1 MiB of headers to one request")
	}
}

func hostRemoveHeader(ctx context.Context, mod api.Module, stack []uint64) {
	i := callingInstance(ctx, fnRemoveHeader)
	ex := i.exchange(fnRemoveHeader)
	kind := uint32(stack[0])
	i.mutableHeaders(fnRemoveHeader, kind)
	name, _ := headerArgs(mod, fnRemoveHeader, stack, false)
	if kind == headerKindRequest {
		ex.Req.Header.DelBytes(name)
		return
	}
	ex.Resp.Header.DelBytes(name)
	ex.RespChanged = true
}

func hostReadBody(ctx context.Context, mod api.Module, stack []uint64) {
	i := callingInstance(ctx, fnReadBody)
	ex := i.exchange(fnReadBody)
	kind, buf, limit := uint32(stack[0]), uint32(stack[1]), uint32(stack[2])
	var body []byte
	var off *int
	switch kind {
	case bodyKindRequest:
		i.mustBeforeNextOr(fnReadBody, featureBufferRequest)
		body, off = ex.Req.Body(), &i.reqReadOff
	case bodyKindResponse:
		i.mustBeforeNextOr(fnReadBody, featureBufferResponse)
		body, off = ex.Resp.Body(), &i.respReadOff
	default:
		abiPanic(fnReadBody, "unknown body kind")
	}
	if limit == 0 {
		abiPanic(fnReadBody, "buf_limit is zero")
	}
	dst := region(mod, fnReadBody, buf, limit)
	if *off > len(body) {
		// The body was rewritten shorter since the last read.
		*off = len(body)
	}
	n := copy(dst, body[*off:])
	*off += n
	var eof uint64
	if *off == len(body) {
		eof = 1 << 32
	}
	stack[0] = eof | uint64(n)
}

func hostWriteBody(ctx context.Context, mod api.Module, stack []uint64) {
	i := callingInstance(ctx, fnWriteBody)
	ex := i.exchange(fnWriteBody)
	kind := uint32(stack[0])
	switch kind {
	case bodyKindRequest:
		i.mustBeforeNext(fnWriteBody)
	case bodyKindResponse:
		i.mustBeforeNextOr(fnWriteBody, featureBufferResponse)
	default:
		abiPanic(fnWriteBody, "unknown body kind")
	}
	b := region(mod, fnWriteBody, uint32(stack[1]), uint32(stack[2]))
	// A body the guest writes lives in host memory: it may not outgrow the guest's own cap.
	limit := int(i.f.memLimit)
	// The first write of a phase replaces the body, later ones append.
	if kind == bodyKindRequest {
		if !i.reqWritten {
			i.reqWritten = true
			ex.Req.ResetBody()
		}
		if len(ex.Req.Body())+len(b) > limit {
			abiPanic(fnWriteBody, "body would exceed the filter's memory cap")
		}
		ex.Req.AppendBody(b)
		return
	}
	if !i.respWritten {
		i.respWritten = true
		ex.Resp.ResetBody()
	}
	if len(ex.Resp.Body())+len(b) > limit {
		abiPanic(fnWriteBody, "body would exceed the filter's memory cap")
	}
	ex.Resp.AppendBody(b)
	ex.RespChanged = true
}

func hostGetStatusCode(ctx context.Context, stack []uint64) {
	ex := callingInstance(ctx, fnGetStatusCode).exchange(fnGetStatusCode)
	stack[0] = uint64(uint32(ex.Resp.StatusCode()))
}

func hostSetStatusCode(ctx context.Context, stack []uint64) {
	i := callingInstance(ctx, fnSetStatusCode)
	ex := i.exchange(fnSetStatusCode)
	i.mustBeforeNextOr(fnSetStatusCode, featureBufferResponse)
	code := uint32(stack[0])
	// The status is the final one: a 1xx would reach the client as an
	// interim response (100, 103) with no final response after it, or as
	// 101 Switching Protocols, and the connection would hang or be misread.
	if code < 200 || code > 599 {
		abiPanic(fnSetStatusCode, "status code outside 200-599")
	}
	ex.Resp.SetStatusCode(int(code))
	ex.RespChanged = true
}

func hostGetSourceAddr(ctx context.Context, mod api.Module, stack []uint64) {
	ex := callingInstance(ctx, fnGetSourceAddr).exchange(fnGetSourceAddr)
	if ex.RemoteAddr == "" && ex.Source != nil {
		ex.RemoteAddr = ex.Source.String()
	}
	stack[0] = uint64(writeLimited(mod, fnGetSourceAddr, uint32(stack[0]), uint32(stack[1]), ex.RemoteAddr))
}

// --- hookwall -----------------------------------------------------------------

// hostSetLabel hands a label to the policy (Exchange.SetLabel). Labels are for the policy,
// which has decided by the time handle_response runs: after next set_label traps, rather than
// file a label no policy reads (and the server would file under whichever filter ran last).
func hostSetLabel(ctx context.Context, mod api.Module, stack []uint64) {
	i := callingInstance(ctx, fnSetLabel)
	ex := i.exchange(fnSetLabel)
	i.mustBeforeNext(fnSetLabel)
	key := region(mod, fnSetLabel, uint32(stack[0]), uint32(stack[1]))
	value := region(mod, fnSetLabel, uint32(stack[2]), uint32(stack[3]))
	switch {
	case len(key) == 0:
		abiPanic(fnSetLabel, "empty label key")
	case len(key) > labelKeyLimit:
		abiPanic(fnSetLabel, "label key longer than 128 bytes")
	case len(value) > labelValueLimit:
		abiPanic(fnSetLabel, "label value longer than 1024 bytes")
	case i.labels >= labelCountLimit:
		abiPanic(fnSetLabel, "more than 64 labels in one request")
	}
	n := i.labels
	i.labels++
	if ex.SetLabel != nil {
		ex.SetLabel(i.labelText(n, 0, key), i.labelText(n, 1, value))
	}
}

// keptLabels is how many of a request's first labels an instance remembers (labelText).
const keptLabels = 4

// labelText returns b as a string: the one the instance made for label n's key (side 0) or
// value (side 1) on an earlier request when the bytes are the same, since a filter tends to
// set the same labels on every request, else a new one, remembered for the next request.
func (i *Instance) labelText(n, side int, b []byte) string {
	if n >= keptLabels {
		return string(b)
	}
	if s := i.labelTexts[n][side]; s == string(b) {
		return s
	}
	s := string(b)
	i.labelTexts[n][side] = s
	return s
}

func hostGetRoute(ctx context.Context, mod api.Module, stack []uint64) {
	ex := callingInstance(ctx, fnGetRoute).exchange(fnGetRoute)
	stack[0] = uint64(writeLimited(mod, fnGetRoute, uint32(stack[0]), uint32(stack[1]), ex.Route))
}
