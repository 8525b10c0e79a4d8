package main

import (
	"testing"

	"github.com/hookwall/hookwall/examples/filters/internal/filtertest"
	"github.com/hookwall/hookwall/sdk/sdktest"
)

// both returns the filter configured with config in the native harness and as the
// committed jsonguard.wasm.
func both(t *testing.T, config string) map[string]filtertest.Runner {
	return filtertest.Both(t, "jsonguard.wasm", config)
}

// TestWasmRejectsBadConfigAtLoad: the gateway refuses the filter when its
// config is bad, with the filter's own message, before any request.
func TestWasmRejectsBadConfigAtLoad(t *testing.T) {
	filtertest.RejectsBadConfigs(t, "jsonguard.wasm", "jsonguard: config", badConfigs)
}

// BenchmarkWasm is the per-request cost of the standard-Go guest through
// the gateway's host, for a valid 7 KiB push event it reads and tokenizes.
func BenchmarkWasm(b *testing.B) {
	w := filtertest.Load(b, filtertest.NewHost(b), "jsonguard.wasm", "")
	req := sdktest.NewRequest("POST", "/hooks/github", filtertest.PushPayload()).WithHeader("Content-Type", "application/json")
	w.Bench(b, req, true)
}

// BenchmarkWasmNoDeadline is BenchmarkWasm with timeout = "0": no interrupt
// checks in the guest's loops.
func BenchmarkWasmNoDeadline(b *testing.B) {
	w := filtertest.Load(b, filtertest.NewHost(b), "jsonguard.wasm", "", filtertest.NoDeadline)
	req := sdktest.NewRequest("POST", "/hooks/github", filtertest.PushPayload()).WithHeader("Content-Type", "application/json")
	w.Bench(b, req, true)
}
