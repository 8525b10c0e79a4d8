package server

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/hookwall/hookwall/engine/internal/snapshot"
	"github.com/hookwall/hookwall/engine/policy"
)

// A shadow policy whose evaluation panics (here a query that was never prepared) is
// recorded as the shadow's error and counted as one; the live decision is untouched and
// the request goes on.
func TestShadowPanicIsTheShadowsError(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	route := &snapshot.Route{Name: "r", Shadow: &policy.Query{}, Timeout: time.Second}
	live := policy.Decision{Allow: true, Status: 403}
	x := &exchange{}
	s.shadow(route, ast.NewObject(), &live, nil, x)
	if sh := x.rec.Shadow; !strings.Contains(sh.Error, "evaluation panicked") || sh.Agree {
		t.Errorf("shadow record %+v, want the panic as its error", sh)
	}
	if !live.Allow || live.Status != 403 {
		t.Errorf("the live decision changed: %+v", live)
	}
}
