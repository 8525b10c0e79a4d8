package main

import (
	"strings"
	"testing"

	"github.com/hookwall/hookwall/examples/filters/internal/filtertest"
	"github.com/hookwall/hookwall/sdk/sdktest"
)

// both returns the filter configured with config twice: in the native
// harness and as the committed eventallow.wasm loaded by the gateway's host.
func both(t *testing.T, config string) map[string]filtertest.Runner {
	t.Helper()
	native, err := sdktest.New(config)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]filtertest.Runner{
		"harness": native,
		"wasm":    filtertest.Load(t, filtertest.NewHost(t), "eventallow.wasm", config),
	}
}

// TestWasmRejectsBadConfigAtLoad: the gateway refuses the filter when its
// config is bad, with the filter's own message, before any request.
func TestWasmRejectsBadConfigAtLoad(t *testing.T) {
	h := filtertest.NewHost(t)
	for _, cfg := range badConfigs {
		_, err := filtertest.TryLoad(h, "eventallow.wasm", cfg)
		if err == nil {
			t.Errorf("config %q loaded", cfg)
			continue
		}
		if !strings.Contains(err.Error(), "eventallow: config") {
			t.Errorf("config %q: error does not carry the filter's message: %v", cfg, err)
		}
	}
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
