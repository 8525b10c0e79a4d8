package server

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/policy"
)

// A slow shadow policy does not use up the live request's deadline: the time it took is
// given back, so the stages after it (the state store, a queued route's enqueue, the
// filters' response phase, all on x.dc) have what the live request had before it ran. A
// queued route with a 1 s timeout and a shadow that ran to its own 1 s deadline answered
// 503 "context deadline exceeded" before.
func TestSlowShadowLeavesTheLiveDeadline(t *testing.T) {
	ctx := context.Background()
	set, err := policy.LoadModules(ctx, map[string]string{"slow.rego": "package routes.slow\n\nallow if {\n\tn := count([x | some x in numbers.range(1, 100000000)])\n\tn > 0\n}\n"}, nil, policy.Options{OPAOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	q, err := set.Prepare(ctx, "routes.slow")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	const timeout = 300 * time.Millisecond
	route := &snapshot.Route{Name: "r", Shadow: q, Timeout: timeout}
	x := &exchange{route: route, doc: ast.NewObject(), dec: policy.Decision{Allow: true}}
	for _, ask := range []bool{false, true} { // without, then with, a Done channel asked for
		x.dc = newDeadlineCtx(time.Now().Add(timeout))
		if ask {
			x.dc.Done()
		}
		start := time.Now()
		s.evalShadowPolicy(x)
		if took := time.Since(start); took < timeout/2 {
			t.Fatalf("the shadow took %v: not slow enough to test", took)
		}
		if x.rec.Shadow.Error == "" {
			t.Fatalf("shadow %+v, want its deadline's error", x.rec.Shadow)
		}
		if err := x.dc.Err(); err != nil {
			t.Errorf("Done asked %v: the live request's context ended with the shadow: %v", ask, err)
		}
		if left := time.Until(func() time.Time { d, _ := x.dc.Deadline(); return d }()); left < timeout/2 {
			t.Errorf("Done asked %v: %v left of the live request's %v after the shadow", ask, left, timeout)
		}
		select {
		case <-x.dc.Done():
			t.Errorf("Done asked %v: Done closed", ask)
		default:
		}
		x.dc.cancel()
	}
}
