//go:build !race

package server

import "testing"

// badFraming runs on every request: it must not allocate.
func TestBadFramingAllocatesNothing(t *testing.T) {
	for _, c := range framingCases {
		h := &readRequest(t, c.raw).Header
		if n := testing.AllocsPerRun(100, func() { _, _, _, _ = badFraming(h, testMaxHeaders, false) }); n != 0 {
			t.Errorf("%s: %v allocs per call, want 0", c.name, n)
		}
	}
}
