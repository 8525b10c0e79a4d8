package main

import (
	"testing"

	"github.com/hookwall/hookwall/examples/filters/internal/filtertest"
	"github.com/hookwall/hookwall/sdk/sdktest"
)

// both returns the filter configured with config in the native harness and as the
// committed eventallow.wasm.
func both(t *testing.T, config string) map[string]filtertest.Runner {
	return filtertest.Both(t, "eventallow.wasm", config)
}

// TestWasmRejectsBadConfigAtLoad: the gateway refuses the filter when its
// config is bad, with the filter's own message, before any request.
func TestWasmRejectsBadConfigAtLoad(t *testing.T) {
	filtertest.RejectsBadConfigs(t, "eventallow.wasm", "eventallow: config", badConfigs)
}

// BenchmarkWasm is the per-request cost of the standard-Go guest through
// the gateway's host, for a forwarded push event (7 KiB body, not read).
func BenchmarkWasm(b *testing.B) {
	w := filtertest.Load(b, filtertest.NewHost(b), "eventallow.wasm", testConfig)
	req := sdktest.NewRequest("POST", "/hooks/github", filtertest.PushPayload()).WithHeader("X-GitHub-Event", "push")
	w.Bench(b, req, true)
}

// BenchmarkWasmDeny is a denied event: the guest writes a response.
func BenchmarkWasmDeny(b *testing.B) {
	w := filtertest.Load(b, filtertest.NewHost(b), "eventallow.wasm", testConfig)
	req := sdktest.NewRequest("POST", "/hooks/github", filtertest.PushPayload()).WithHeader("X-GitHub-Event", "issues")
	w.Bench(b, req, false)
}
