// Command sdkconformance is a test guest that exercises every call of
// package sdk, so one table of requests can check that the native harness
// (sdk/sdktest) and a real wasm build behave alike. The request header
// X-Case picks the behaviour; observations come back as labels.
//
// It is built at test time, never committed.
package main

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"runtime"
	"strconv"
	"strings"

	"github.com/hookwall/hookwall/sdk"
)

// lastMallocs is the heap allocation count at the start of the previous
// "allocs" request.
var lastMallocs uint64

var config string

func init() {
	sdk.Configure(func(b []byte) error {
		if string(b) == "reject" {
			return fmt.Errorf("sdkconformance: config %q rejected", b)
		}
		config = string(b)
		return nil
	})
	sdk.Handle(handle)
	sdk.HandleResponse(handleResponse)
}

func main() {}

func sum(s string) string { return strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(s))), 16) }

func handle(req sdk.Request, resp sdk.Response) bool {
	switch req.Header("X-Case") {
	case "read":
		names := req.HeaderNames()
		sdk.SetLabel("method", req.Method())
		sdk.SetLabel("uri", req.URI())
		sdk.SetLabel("proto", req.ProtocolVersion())
		sdk.SetLabel("source", req.SourceAddr())
		sdk.SetLabel("route", sdk.Route())
		sdk.SetLabel("config", config)
		sdk.SetLabel("config_call", string(sdk.Config()))
		sdk.SetLabel("first", req.Header("x-multi"))
		sdk.SetLabel("values", strings.Join(req.HeaderValues("X-MULTI"), "|"))
		sdk.SetLabel("missing", strconv.Itoa(len(req.HeaderValues("X-Missing"))))
		sdk.SetLabel("has_names", strconv.FormatBool(contains(names, "x-multi") && contains(names, "x-long") && contains(names, "x-case")))
		long := req.Header("X-Long")
		sdk.SetLabel("long", strconv.Itoa(len(long))+":"+sum(long))
		body := req.Body()
		sdk.SetLabel("body", strconv.Itoa(len(body))+":"+sum(string(body)))
		sdk.SetLabel("body_again", strconv.Itoa(len(req.Body())))
		sdk.SetLabel("status", strconv.Itoa(resp.StatusCode()))
		return true
	case "cookie":
		sdk.SetLabel("cookies", strings.Join(req.HeaderValues("Cookie"), "|"))
		sdk.SetLabel("cookie_first", req.Header("cookie"))
		sdk.SetLabel("content_length", strings.Join(req.HeaderValues("Content-Length"), "|"))
		req.AddHeader("Cookie", "d=4")
		sdk.SetLabel("cookies_added", strings.Join(req.HeaderValues("Cookie"), "|"))
		req.SetBody([]byte("rewritten, longer"))
		sdk.SetLabel("content_length_after", strings.Join(req.HeaderValues("Content-Length"), "|"))
		return true
	case "mutate":
		req.SetMethod("PUT")
		req.SetURI("/changed?q=1")
		req.RemoveHeader("X-Drop")
		req.SetHeader("X-Set", "new")
		req.AddHeader("X-Add", "a1")
		req.AddHeader("X-Add", "a2")
		req.SetBody([]byte("first,"))
		req.SetBody([]byte("second"))
		sdk.SetLabel("body_after", string(req.Body()))
		return true
	case "inplace":
		b := req.Body()
		copy(b, "EDITED")
		req.SetBody(b)
		return true
	case "stream":
		p := make([]byte, 100)
		var streamed int
		for range 5 {
			n, _ := req.ReadBody(p)
			streamed += n
		}
		rest := req.Body()
		n, eof := req.ReadBody(p)
		sdk.SetLabel("streamed", strconv.Itoa(streamed))
		sdk.SetLabel("rest", strconv.Itoa(len(rest)))
		sdk.SetLabel("after", strconv.Itoa(n)+":"+strconv.FormatBool(eof))
		return true
	case "deny":
		sdk.SetLabel("denied", "yes")
		return sdk.Deny(418, "teapot")
	case "respond":
		resp.SetStatusCode(202)
		resp.SetHeader("X-Made", "guest")
		resp.AddHeader("X-Made", "twice")
		resp.SetBody([]byte("made "))
		resp.SetBody([]byte("here"))
		return false
	case "log":
		if sdk.LogEnabled(sdk.LevelWarn) {
			sdk.Log(sdk.LevelWarn, "warned")
		}
		return true
	case "panic":
		panic("conformance panic")
	case "badheader":
		req.SetHeader("X-Bad", "a\r\nInjected: 1")
		return true
	case "badstatus":
		resp.SetStatusCode(42)
		return false
	case "allocs":
		// Heap allocations of one whole request (SDK dispatch, a 4 KiB body
		// read, a header, this label), measured from one request's start to
		// the next one's.
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if lastMallocs != 0 {
			sdk.SetLabel("mallocs", strconv.FormatUint(ms.Mallocs-lastMallocs, 10))
		}
		lastMallocs = ms.Mallocs
		_ = req.Method()
		_ = req.Body()
		_ = req.Header("X-Case")
		return true
	}
	return true
}

func handleResponse(req sdk.Request, resp sdk.Response, isError bool) {
	if req.Header("X-Case") != "response" {
		return
	}
	up := resp.Body()
	resp.SetStatusCode(resp.StatusCode() + 1)
	resp.SetHeader("X-Upstream-Was", resp.Header("X-Up"))
	resp.RemoveHeader("X-Up")
	resp.SetBody(bytes.ToUpper(up))
	if isError {
		resp.SetHeader("X-Is-Error", "true")
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
