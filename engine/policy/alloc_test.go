//go:build !race

// The race detector makes sync.Pool drop what it is given at random, so allocation
// budgets hold only without it.

package policy

import "testing"

// TestReferencePolicyAllocations holds the allocations of one compiled evaluation of the
// benchmark's reference policy on a captured request, capture included: the obligations'
// struct, their two keys copied out of the request, and the captured request's terms.
func TestReferencePolicyAllocations(t *testing.T) {
	_, _, captured := signedPush(t, "../../examples/bench/policies", "bench.reference", "bench-secret", "/reference", "127.0.0.1")
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := captured(); err != nil {
			t.Fatal(err)
		}
	})
	const budget = 6
	if allocs > budget {
		t.Errorf("%v allocations an evaluation, budget %d", allocs, budget)
	}
	t.Logf("%v allocations an evaluation", allocs)
}
