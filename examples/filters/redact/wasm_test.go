package main

import (
	"strings"
	"testing"

	"github.com/hookwall/hookwall/examples/filters/internal/filtertest"
	"github.com/hookwall/hookwall/sdk/sdktest"
)

// both returns the filter configured with config twice: in the native
// harness and as the committed redact.wasm loaded by the gateway's host.
func both(t *testing.T, config string) map[string]filtertest.Runner {
	t.Helper()
	native, err := sdktest.New(config)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]filtertest.Runner{
		"harness": native,
		"wasm":    filtertest.Load(t, filtertest.NewHost(t), "redact.wasm", config),
	}
}

// TestWasmRejectsBadConfigAtLoad: the gateway refuses the filter when its
// config is bad, with the filter's own message, before any request.
func TestWasmRejectsBadConfigAtLoad(t *testing.T) {
	h := filtertest.NewHost(t)
	for _, cfg := range badConfigs {
		_, err := filtertest.TryLoad(h, "redact.wasm", cfg)
		if err == nil {
			t.Errorf("config %q loaded", cfg)
			continue
		}
		if !strings.Contains(err.Error(), "redact: config") {
			t.Errorf("config %q: error does not carry the filter's message: %v", cfg, err)
		}
	}
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
