//go:build wasip1

// Command goguest is a standard-Go http-wasm guest (a reactor) used by the
// engine/filter tests. It imports the ABI directly, without the SDK, so the
// host is tested on its own. Built by the tests with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o goguest.wasm .
package main

import (
	"os"
	"unsafe"
)

//go:wasmimport http_handler get_header_values
func getHeaderValues(kind uint32, name unsafe.Pointer, nameLen uint32, buf unsafe.Pointer, bufLimit uint32) uint64

//go:wasmimport http_handler set_header_value
func setHeaderValue(kind uint32, name unsafe.Pointer, nameLen uint32, value unsafe.Pointer, valueLen uint32)

//go:wasmimport http_handler set_status_code
func setStatusCode(code uint32)

//go:wasmimport hookwall set_label
func setLabel(key unsafe.Pointer, keyLen uint32, value unsafe.Pointer, valueLen uint32)

var (
	buf      [256]byte
	requests int // persists between requests of one instance
)

func ptr(s string) (unsafe.Pointer, uint32) {
	return unsafe.Pointer(unsafe.StringData(s)), uint32(len(s))
}

func init() {
	// Runs in _initialize: proves the reactor was initialized and that
	// stderr reaches the host's log.
	os.Stderr.WriteString("goguest initialized\n")
}

// handleRequest labels the request with its x-event header, denies
// "blocked" events with 403, and marks forwarded requests.
//
//go:wasmexport handle_request
func handleRequest() uint64 {
	requests++
	name, nameLen := ptr("x-event")
	res := getHeaderValues(0, name, nameLen, unsafe.Pointer(&buf[0]), uint32(len(buf)))
	count, n := uint32(res>>32), uint32(res)
	if count != 1 || n > uint32(len(buf)) {
		setStatusCode(400)
		return 0
	}
	event := string(buf[:n-1]) // one NUL-terminated value
	k, kl := ptr("event")
	v, vl := ptr(event)
	setLabel(k, kl, v, vl)
	if event == "blocked" {
		setStatusCode(403)
		return 0
	}
	h, hl := ptr("x-go-guest")
	c := string(rune('0' + requests%10))
	cv, cl := ptr(c)
	setHeaderValue(0, h, hl, cv, cl)
	return 1
}

//go:wasmexport handle_response
func handleResponse(reqCtx, isError uint32) {}

func main() {}
