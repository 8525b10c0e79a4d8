//go:build !wasip1

package sdk

import (
	"github.com/hookwall/hookwall/sdk/internal/harness"
	"strings"
)

// The native ABI: the same functions as abi_wasip1.go, answered by the
// in-memory host of sdk/internal/harness with the ABI's exact semantics, so
// everything above this file (buffer growth, body caching, list splitting)
// runs the same code in tests as in wasm.

func init() {
	harness.SetRequestHandler(func() bool { return onHandleRequest()&1 == 1 })
	harness.SetResponseHandler(onHandleResponse)
}

func registerConfigure(fn func([]byte) error) { harness.AddConfigure(fn) }

// putBytes honours (buf, buf_limit) -> len: the value is written only when
// it fits, and its length is returned either way.
func putBytes(buf []byte, v string) uint32 {
	if len(v) <= len(buf) {
		copy(buf, v)
	}
	return uint32(len(v))
}

// putList writes NUL-terminated values when they all fit and returns
// count<<32|len either way.
func putList(buf []byte, vs []string) uint64 {
	n := 0
	for _, v := range vs {
		n += len(v) + 1
	}
	if n <= len(buf) {
		off := 0
		for _, v := range vs {
			off += copy(buf[off:], v)
			buf[off] = 0
			off++
		}
	}
	return uint64(len(vs))<<32 | uint64(n)
}

func abiLog(level int32, msg string) {
	x := harness.Current()
	x.Logs = append(x.Logs, harness.Log{Level: level, Msg: msg})
}

func abiLogEnabled(int32) bool { return true }

func abiGetConfig(buf []byte) uint32 { return putBytes(buf, string(harness.Config())) }

// supported is what the in-memory host offers: it buffers everything and
// has no trailers, like the fasthttp host.
const supported = uint32(FeatureBufferRequest | FeatureBufferResponse)

// abiEnableFeatures grants features as the host does: during handle_request for the request;
// after next nothing new (http-wasm takes a feature only before handle_request returns), the
// features enabled before it are returned.
func abiEnableFeatures(f uint32) uint32 {
	if x := harness.Peek(); x != nil {
		if harness.CurrentPhase() == harness.PhaseRequest {
			x.Features |= f & supported
		}
		return x.Features
	}
	return f & supported
}

func abiGetMethod(buf []byte) uint32 { return putBytes(buf, harness.Current().Method) }

func abiSetMethod(m string) {
	x := beforeNext("set_method")
	if !harness.IsToken(m) {
		harness.Trap("set_method", "method is not an HTTP token")
	}
	if strings.EqualFold(m, "CONNECT") {
		harness.Trap("set_method", "method CONNECT is not allowed")
	}
	x.Method = m
}

func abiGetURI(buf []byte) uint32 { return putBytes(buf, harness.Current().URI) }

func abiSetURI(u string) {
	x := beforeNext("set_uri")
	if u == "" {
		u = "/"
	}
	if !harness.IsOriginForm(u) {
		harness.Trap("set_uri", "uri must be a path starting with '/', with an optional query, of the characters RFC 3986 allows")
	}
	x.URI = u
}

// beforeNext traps unless handle_request is running.
func beforeNext(fn string) *harness.Exchange {
	x := harness.Current()
	if harness.CurrentPhase() != harness.PhaseRequest {
		harness.Trap(fn, "not allowed after next")
	}
	return x
}

// beforeNextOr traps after next unless the guest enabled feature.
func beforeNextOr(fn string, feature Features) *harness.Exchange {
	x := harness.Current()
	if harness.CurrentPhase() != harness.PhaseRequest && Features(x.Features)&feature == 0 {
		harness.Trap(fn, "not allowed after next without the buffer feature")
	}
	return x
}

func abiGetProtocolVersion(buf []byte) uint32 { return putBytes(buf, harness.Current().Proto) }

func abiGetSourceAddr(buf []byte) uint32 { return putBytes(buf, harness.Current().SourceAddr) }

// fields returns the header list of kind; trailers (kinds 2 and 3) are not
// supported, so reads see none and writes trap, as the ABI prescribes.
func fields(fn string, kind uint32, write bool) *harness.Fields {
	x := harness.Current()
	switch kind {
	case kindRequest:
		if write {
			beforeNext(fn)
		}
		return &x.ReqHeader
	case kindResponse:
		if write {
			beforeNextOr(fn, FeatureBufferResponse)
		}
		return &x.RespHeader
	case 2, 3:
		if write {
			harness.Trap(fn, "trailers are not supported")
		}
		return nil
	}
	harness.Trap(fn, "unknown header kind")
	return nil
}

func headerArgs(fn, name, value string) {
	if !harness.IsToken(name) {
		harness.Trap(fn, "header name is not an HTTP token")
	}
	if !harness.IsFieldValue(value) {
		harness.Trap(fn, "header value has control characters")
	}
}

func abiGetHeaderNames(kind uint32, buf []byte) uint64 {
	f := fields("get_header_names", kind, false)
	if f == nil {
		return 0
	}
	return putList(buf, f.Names())
}

func abiGetHeaderValues(kind uint32, name string, buf []byte) uint64 {
	if name == "" {
		harness.Trap("get_header_values", "empty header name")
	}
	f := fields("get_header_values", kind, false)
	if f == nil {
		return 0
	}
	return putList(buf, f.Values(name))
}

func abiSetHeaderValue(kind uint32, name, value string) {
	f := fields("set_header_value", kind, true)
	writeHeaderArgs("set_header_value", name, value)
	chargeHeader("set_header_value", name, value)
	*f = f.Set(name, value)
	if kind == kindRequest && strings.EqualFold(name, "Cookie") {
		*f = f.MergeCookies()
	}
}

func abiAddHeaderValue(kind uint32, name, value string) {
	f := fields("add_header_value", kind, true)
	writeHeaderArgs("add_header_value", name, value)
	chargeHeader("add_header_value", name, value)
	*f = f.Add(name, value)
	if kind == kindRequest && strings.EqualFold(name, "Cookie") {
		*f = f.MergeCookies() // added to the request's cookie list, as the gateway does
	}
}

// writeHeaderArgs checks a header the guest sets or adds, as the gateway does: a Trailer
// named through the header kind traps there too.
func writeHeaderArgs(fn, name, value string) {
	headerArgs(fn, name, value)
	if strings.EqualFold(name, "Trailer") {
		harness.Trap(fn, "trailers are not supported")
	}
}

// chargeHeader counts a header the guest sets or adds against the exchange's budget, as the
// gateway does.
func chargeHeader(fn, name, value string) {
	x := harness.Current()
	x.AddedHeaderBytes += len(name) + len(value) + harness.AddedHeaderOverhead
	if x.AddedHeaderBytes > harness.AddedHeaderLimit {
		harness.Trap(fn, "guest added more than 1 MiB of headers to one request")
	}
}

func abiRemoveHeader(kind uint32, name string) {
	f := fields("remove_header", kind, true)
	headerArgs("remove_header", name, "")
	*f = f.Del(name)
}

func abiReadBody(kind uint32, buf []byte) uint64 {
	var b *harness.Body
	switch kind {
	case kindRequest:
		b = &beforeNextOr("read_body", FeatureBufferRequest).ReqBody
	case kindResponse:
		b = &beforeNextOr("read_body", FeatureBufferResponse).RespBody
	default:
		harness.Trap("read_body", "unknown body kind")
	}
	if len(buf) == 0 {
		harness.Trap("read_body", "buf_limit is zero")
	}
	n, eof := b.Read(buf)
	el := uint64(n)
	if eof {
		el |= 1 << 32
	}
	return el
}

func abiWriteBody(kind uint32, b []byte) {
	var body *harness.Body
	switch kind {
	case kindRequest:
		body = &beforeNext("write_body").ReqBody
	case kindResponse:
		body = &beforeNextOr("write_body", FeatureBufferResponse).RespBody
	default:
		harness.Trap("write_body", "unknown body kind")
	}
	if !body.Write(b) {
		harness.Trap("write_body", "body would exceed the filter's memory cap")
	}
}

func abiGetStatusCode() uint32 { return uint32(harness.Current().Status) }

func abiSetStatusCode(code uint32) {
	x := beforeNextOr("set_status_code", FeatureBufferResponse)
	if code < 200 || code > 599 {
		harness.Trap("set_status_code", "status code outside 200-599")
	}
	x.Status = int(code)
}

func abiSetLabel(key, value string) {
	x := beforeNext("set_label") // labels are for the policy, which has decided after next
	switch {
	case key == "":
		harness.Trap("set_label", "empty label key")
	case len(key) > harness.LabelKeyLimit:
		harness.Trap("set_label", "label key longer than 128 bytes")
	case len(value) > harness.LabelValueLimit:
		harness.Trap("set_label", "label value longer than 1024 bytes")
	case x.LabelCalls >= harness.LabelCountLimit:
		harness.Trap("set_label", "more than 64 labels in one request")
	}
	x.LabelCalls++
	if x.Labels == nil {
		x.Labels = make(map[string]string)
	}
	x.Labels[key] = value
}

func abiGetRoute(buf []byte) uint32 { return putBytes(buf, harness.Current().Route) }
