// Package sdk is the guest SDK for hookwall filters written in standard Go.
//
// A filter is a package main that registers its handlers from init and is
// built as a WebAssembly reactor:
//
//	GOOS=wasip1 GOARCH=wasm go build -trimpath -buildmode=c-shared -o f.wasm .
//
// (or `hookwall filter build DIR -o f.wasm`). The module speaks the http-wasm
// handler ABI (host module "http_handler", exports handle_request and
// handle_response) plus hookwall's optional "hookwall" host module for labels
// and the route name; see ABI.md next to this file.
//
//	func init() {
//		sdk.Configure(parseConfig) // runs once per instance, before any request
//		sdk.Handle(func(req sdk.Request, resp sdk.Response) bool {
//			if req.Header("X-GitHub-Event") == "" {
//				return sdk.Deny(400, "missing event")
//			}
//			sdk.SetLabel("seen", "true")
//			return true // forward the request
//		})
//	}
//
//	func main() {} // required by the toolchain, never run in a reactor
//
// # Contract
//
//   - Register with Handle, HandleResponse and Configure from init, never later:
//     a reactor's main is not run, and the host calls the exports only after
//     _initialize (which runs init) returned.
//   - A handler returning true forwards the request (with any changes made to
//     it); false ends the request with the response written through Response
//     (status 200 and an empty body unless set; see Deny).
//   - Request and Response are handles to the exchange being handled. They are
//     valid only while a handler runs; calling their methods elsewhere traps on
//     the host (panics in the native build).
//   - Byte slices returned by Body are owned by the SDK and reused: they are
//     valid until the handler returns or SetBody is called on the same message,
//     whichever comes first. Strings are copies.
//   - A panic in a handler traps the instance: the host discards it and answers
//     with its configured on_error behaviour.
//   - Instances are single-threaded, and their globals persist across requests
//     until the host recycles the instance. Keep per-request state local.
//
// # Native build
//
// Built for any other GOOS (plain `go test`), the same API runs against the
// in-memory host of package sdk/sdktest, so a filter is unit-tested without
// wasm. The only package state is the guest model itself (one handler per
// module, as in wasm); sdktest serialises runs over it.
package sdk
