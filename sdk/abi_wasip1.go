//go:build wasip1

package sdk

import "unsafe"

// The http_handler imports, as http-wasm-host-go's api/handler names and
// types them. Pointers are offsets into this module's memory; lengths are
// bytes. Go's wasm heap does not move, so passing a pointer to a live slice
// or string for the duration of a call is safe.

//go:wasmimport http_handler log
func httpLog(level int32, msg unsafe.Pointer, msgLen uint32)

//go:wasmimport http_handler log_enabled
func httpLogEnabled(level int32) uint32

//go:wasmimport http_handler get_config
func httpGetConfig(buf unsafe.Pointer, bufLimit uint32) uint32

//go:wasmimport http_handler enable_features
func httpEnableFeatures(features uint32) uint32

//go:wasmimport http_handler get_method
func httpGetMethod(buf unsafe.Pointer, bufLimit uint32) uint32

//go:wasmimport http_handler set_method
func httpSetMethod(method unsafe.Pointer, methodLen uint32)

//go:wasmimport http_handler get_uri
func httpGetURI(buf unsafe.Pointer, bufLimit uint32) uint32

//go:wasmimport http_handler set_uri
func httpSetURI(uri unsafe.Pointer, uriLen uint32)

//go:wasmimport http_handler get_protocol_version
func httpGetProtocolVersion(buf unsafe.Pointer, bufLimit uint32) uint32

//go:wasmimport http_handler get_header_names
func httpGetHeaderNames(kind uint32, buf unsafe.Pointer, bufLimit uint32) uint64

//go:wasmimport http_handler get_header_values
func httpGetHeaderValues(kind uint32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLimit uint32) uint64

//go:wasmimport http_handler set_header_value
func httpSetHeaderValue(kind uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport http_handler add_header_value
func httpAddHeaderValue(kind uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport http_handler remove_header
func httpRemoveHeader(kind uint32, name unsafe.Pointer, nameLen uint32)

//go:wasmimport http_handler read_body
func httpReadBody(kind uint32, buf unsafe.Pointer, bufLimit uint32) uint64

//go:wasmimport http_handler write_body
func httpWriteBody(kind uint32, body unsafe.Pointer, bodyLen uint32)

//go:wasmimport http_handler get_status_code
func httpGetStatusCode() uint32

//go:wasmimport http_handler set_status_code
func httpSetStatusCode(statusCode uint32)

//go:wasmimport http_handler get_source_addr
func httpGetSourceAddr(buf unsafe.Pointer, bufLimit uint32) uint32

// The hookwall imports. A module that never calls SetLabel or Route does
// not import them (the linker drops unreachable imports), so it also runs
// on other http-wasm hosts.

//go:wasmimport hookwall set_label
func hwSetLabel(key unsafe.Pointer, keyLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport hookwall get_route
func hwGetRoute(buf unsafe.Pointer, bufLimit uint32) uint32

//go:wasmexport handle_request
func handleRequest() uint64 { return onHandleRequest() }

//go:wasmexport handle_response
func handleResponse(reqCtx uint32, isError uint32) { onHandleResponse(isError != 0) }

func registerConfigure(fn func([]byte) error) {
	if err := fn(Config()); err != nil {
		// A panic during _initialize fails instantiation: the gateway
		// refuses the filter at load, with this message on the guest's stderr.
		panic("sdk: config: " + err.Error())
	}
}

func sp(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

func bp(b []byte) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.SliceData(b)), uint32(len(b))
}

func abiLog(level int32, msg string) {
	p, n := sp(msg)
	httpLog(level, p, n)
}

func abiLogEnabled(level int32) bool { return httpLogEnabled(level) != 0 }

func abiGetConfig(buf []byte) uint32 { return httpGetConfig(bp(buf)) }

func abiEnableFeatures(f uint32) uint32 { return httpEnableFeatures(f) }

func abiGetMethod(buf []byte) uint32 { return httpGetMethod(bp(buf)) }

func abiSetMethod(m string) { httpSetMethod(sp(m)) }

func abiGetURI(buf []byte) uint32 { return httpGetURI(bp(buf)) }

func abiSetURI(u string) { httpSetURI(sp(u)) }

func abiGetProtocolVersion(buf []byte) uint32 { return httpGetProtocolVersion(bp(buf)) }

func abiGetSourceAddr(buf []byte) uint32 { return httpGetSourceAddr(bp(buf)) }

func abiGetHeaderNames(kind uint32, buf []byte) uint64 {
	p, n := bp(buf)
	return httpGetHeaderNames(kind, p, n)
}

func abiGetHeaderValues(kind uint32, name string, buf []byte) uint64 {
	np, nn := sp(name)
	p, n := bp(buf)
	return httpGetHeaderValues(kind, np, nn, p, n)
}

func abiSetHeaderValue(kind uint32, name, value string) {
	np, nn := sp(name)
	vp, vn := sp(value)
	httpSetHeaderValue(kind, np, nn, vp, vn)
}

func abiAddHeaderValue(kind uint32, name, value string) {
	np, nn := sp(name)
	vp, vn := sp(value)
	httpAddHeaderValue(kind, np, nn, vp, vn)
}

func abiRemoveHeader(kind uint32, name string) {
	np, nn := sp(name)
	httpRemoveHeader(kind, np, nn)
}

func abiReadBody(kind uint32, buf []byte) uint64 {
	p, n := bp(buf)
	return httpReadBody(kind, p, n)
}

func abiWriteBody(kind uint32, b []byte) {
	p, n := bp(b)
	httpWriteBody(kind, p, n)
}

func abiGetStatusCode() uint32 { return httpGetStatusCode() }

func abiSetStatusCode(code uint32) { httpSetStatusCode(code) }

func abiSetLabel(key, value string) {
	kp, kn := sp(key)
	vp, vn := sp(value)
	hwSetLabel(kp, kn, vp, vn)
}

func abiGetRoute(buf []byte) uint32 { return hwGetRoute(bp(buf)) }
