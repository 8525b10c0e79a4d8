//go:build !race

package state

import (
	"testing"
	"time"
)

func TestValidateDoesNotAllocate(t *testing.T) {
	good := Check{RateKey: "k", Limit: 7, Per: time.Minute, DedupeKey: "d", DedupeTTL: time.Hour}
	bad := Check{RateKey: "k", Limit: 100003, Per: 24 * time.Hour}
	if n := testing.AllocsPerRun(100, func() { _ = good.Validate(); _ = bad.Validate() }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}
