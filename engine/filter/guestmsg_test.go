package filter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStartFailureSaysWhatTheGuestSaid: a real SDK filter (examples/filters/jsonguard) with a
// config it refuses fails to load with its own message, not only a trap and a stack trace.
func TestStartFailureSaysWhatTheGuestSaid(t *testing.T) {
	wasm, err := os.ReadFile(filepath.Join("..", "..", "examples", "filters", "jsonguard", "jsonguard.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	h := newHost(t)
	_, err = h.Load(testCtx, Spec{Name: "jsonguard", Module: wasm, Config: []byte(`{"max_depth": 0}`)})
	if err == nil {
		t.Fatal("jsonguard accepted max_depth 0")
	}
	msg := err.Error()
	if !strings.Contains(msg, "jsonguard: config: limits out of range") {
		t.Fatalf("the guest's own message is missing: %s", msg)
	}
	if strings.Contains(msg, "wasm stack trace") || strings.Contains(msg, "goroutine ") || strings.Count(msg, "\n") > 0 {
		t.Fatalf("the error carries a trace: %s", msg)
	}
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != KindTrap {
		t.Fatalf("want a trap *Error, got %T %v", err, err)
	}

	// A guest that says nothing keeps the trap as the error.
	_, err = h.Load(testCtx, Spec{Name: "silent", Module: testdata(t, "unreachable.wasm")})
	if err != nil && strings.Contains(err.Error(), "the guest failed") {
		t.Fatalf("a silent guest is quoted: %v", err)
	}
}

func TestGuestMessage(t *testing.T) {
	for in, want := range map[string]string{
		"": "",
		"panic: sdk: config: bad\n\ngoroutine 1 [running]:\nmain.init()\n": "sdk: config: bad",
		"warming up\nconfig: max_bytes must be > 0\n":                      "config: max_bytes must be > 0",
		"panic: boom [recovered]\n":                                        "boom",
		"panic: " + strings.Repeat("x", 600):                               strings.Repeat("x", maxGuestMessage) + "…",
	} {
		if got := guestMessage([]byte(in)); got != want {
			t.Errorf("guestMessage(%q) = %q, want %q", in, got, want)
		}
	}
}
