package main

import (
	"testing"

	"github.com/hookwall/hookwall/examples/filters/internal/filtertest"
	"github.com/hookwall/hookwall/sdk/sdktest"
)

// both returns the filter configured with config in the native harness and as the
// committed redact.wasm.
func both(t *testing.T, config string) map[string]filtertest.Runner {
	return filtertest.Both(t, "redact.wasm", config)
}

// TestWasmRejectsBadConfigAtLoad: the gateway refuses the filter when its
// config is bad, with the filter's own message, before any request.
func TestWasmRejectsBadConfigAtLoad(t *testing.T) {
	filtertest.RejectsBadConfigs(t, "redact.wasm", "redact: config", badConfigs)
}

// BenchmarkWasm is the per-request cost of the standard-Go guest through
// the gateway's host, for a 7 KiB push event with 26 e-mail addresses it
// masks and writes back.
func BenchmarkWasm(b *testing.B) {
	w := filtertest.Load(b, filtertest.NewHost(b), "redact.wasm", "")
	req := sdktest.NewRequest("POST", "/hooks/github", filtertest.PushPayload()).WithHeader("Content-Type", "application/json")
	w.Bench(b, req, true)
}

// BenchmarkWasmNoDeadline is BenchmarkWasm with timeout = "0": no interrupt
// checks in the guest's loops.
func BenchmarkWasmNoDeadline(b *testing.B) {
	w := filtertest.Load(b, filtertest.NewHost(b), "redact.wasm", "", filtertest.NoDeadline)
	req := sdktest.NewRequest("POST", "/hooks/github", filtertest.PushPayload()).WithHeader("Content-Type", "application/json")
	w.Bench(b, req, true)
}
