//go:build !race

package state

import (
	"testing"
	"time"
)

func TestValidateDoesNotAllocate(t *testing.T) {
	good := Check{RateLimit: RateLimit{Key: "k", Limit: 7, Per: time.Minute}, Dedupe: Dedupe{Key: "d", TTL: time.Hour}}
	bad := Check{RateLimit: RateLimit{Key: "k", Limit: 100003, Per: 24 * time.Hour}}
	if n := testing.AllocsPerRun(100, func() { _ = good.Validate(); _ = bad.Validate() }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
