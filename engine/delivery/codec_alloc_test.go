//go:build !race

package delivery_test

import (
	"testing"

	"github.com/hookwall/hookwall/engine/delivery"
)

// A record's headers are decoded for every claim read from the store and for every copy a
// store keeps in memory: one string for them all and the slice, however many there are.
func TestDecodeHeadersAllocatesTwice(t *testing.T) {
	b := delivery.EncodeHeaders([]delivery.Header{
		{"Content-Type", "application/json"}, {"User-Agent", "GitHub-Hookshot/abc"}, {"X-Github-Event", "push"},
		{"X-Github-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"}, {"X-Hub-Signature-256", "sha256=0123"},
		{"X-Forwarded-For", "192.0.2.1"}, {"X-Forwarded-Host", "hooks.example"}, {"X-Request-Id", "0123456789abcdef"},
	})
	if n := testing.AllocsPerRun(100, func() { _, _ = delivery.DecodeHeaders(b) }); n != 2 {
		t.Errorf("DecodeHeaders of 8 headers: %v allocations, want 2", n)
	}
}
