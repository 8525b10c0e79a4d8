package filter

import (
	"context"
	"testing"
	"time"
)

// BenchmarkRequestTiny is the filter-stage overhead of one request through
// a tiny guest (one host call): Acquire, handle_request, handle_response,
// Release. "deadline" pays for the interrupt checks, the call timer and
// wazero's watcher goroutine; the deadline is 1s rather than 50ms so a busy
// machine does not turn a descheduled call into a failed benchmark (the
// cost does not depend on the duration).
func BenchmarkRequestTiny(b *testing.B) {
	h := newHost(b)
	for _, c := range []struct {
		name string
		spec Spec
	}{
		{"deadline", Spec{Name: "tiny", Module: testdata(b, "tiny.wasm"), Timeout: time.Second, Pool: 1, MaxUses: 1 << 30}},
		{"nodeadline", Spec{Name: "tiny", Module: testdata(b, "tiny.wasm"), Timeout: NoDeadline, Pool: 1, MaxUses: 1 << 30}},
	} {
		b.Run(c.name, func(b *testing.B) {
			f, err := h.Load(testCtx, c.spec)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close(testCtx)
			ex, _, _ := newExchange(b, getReq)
			b.ReportAllocs()
			for b.Loop() {
				serve(b, f, ex)
			}
		})
	}
}

// BenchmarkInstantiateTiny is the cost of one new instance of a tiny guest
// (what a discarded or recycled instance costs to replace).
func BenchmarkInstantiateTiny(b *testing.B) {
	h := newHost(b)
	f := load(b, h, Spec{Name: "tiny", Module: testdata(b, "tiny.wasm"), Pool: 1})
	b.ReportAllocs()
	for b.Loop() {
		inst, err := f.newInstance(testCtx)
		if err != nil {
			b.Fatal(err)
		}
		_ = inst.close(testCtx)
	}
}

// BenchmarkCallingInstance is what every host function pays to find its instance: "direct"
// on the guest call's own context, as wazero hands it over; "value" on a context that only
// delegates to it, so the instance is found through Value (every host call's way before).
func BenchmarkCallingInstance(b *testing.B) {
	h := newHost(b)
	f := load(b, h, Spec{Name: "tiny", Module: testdata(b, "tiny.wasm"), Pool: 1})
	inst, err := f.newInstance(testCtx)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = inst.close(testCtx) }()
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"direct", &inst.cctx}, {"value", struct{ context.Context }{&inst.cctx}}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if callingInstance(c.ctx, fnGetRoute) != inst {
					b.Fatal("another instance")
				}
			}
		})
	}
}
