// Package filters holds hookwall's example WASM filters, one directory each,
// every one useful for webhook security:
//
//   - jsonguard: rejects JSON bombs (size 413; depth, key count, syntax 422)
//   - redact: masks e-mail addresses and card numbers in the forwarded body
//   - eventallow: forwards only allow-listed event types (403 otherwise)
//   - tiny: a hand-written WAT module, no SDK: any language works
//
// The Go filters use package sdk and are built as WASI reactors; their
// .wasm files are committed so a fresh clone runs them without a build, and
// TestExampleWasmIsCurrent fails when a committed module no longer matches
// its source. Rebuild them all with `go generate ./examples/filters/...`
// (the Go toolchain, and wat2wasm from wabt for tiny).
//
// This package itself only carries that check and the tests of tiny.
//
//go:generate wat2wasm tiny/tiny.wat -o tiny/tiny.wasm
package filters
