//go:build !race

package decisionlog

import (
	"strings"
	"testing"

	"github.com/hookwall/hookwall/engine/delivery"
)

// TestEncodeAllocations: encoding a record (masking, body, shadow, result) into a warm buffer
// allocates nothing; only a policy's labels object (json.Marshal) would.
func TestEncodeAllocations(t *testing.T) {
	r := sampleRecord()
	r.Labels = nil
	m := NewMask([]string{"X-Internal-*"})
	buf := r.appendJSON(nil, m, nil)
	if n := testing.AllocsPerRun(200, func() { buf = r.appendJSON(buf[:0], m, nil) }); n != 0 {
		t.Fatalf("appendJSON: %v allocs/op, want 0", n)
	}
	if n := testing.AllocsPerRun(200, func() { _ = m.Masks("X-Hub-Signature-256") }); n != 0 {
		t.Fatalf("Masks: %v allocs/op, want 0", n)
	}
	body := make([]byte, 4096)
	r.CaptureBody(body, 1024)
	if n := testing.AllocsPerRun(200, func() { r.CaptureBody(body, 1024) }); n != 0 {
		t.Fatalf("CaptureBody into a reused record: %v allocs/op, want 0", n)
	}
}

// TestSealedEncodeAllocations: sealing the captured body ([delivery] encryption_keys) into a
// warm buffer costs one allocation, the key-bound additional data.
func TestSealedEncodeAllocations(t *testing.T) {
	kr, err := delivery.NewKeyring([]delivery.Key{{ID: "k1", Value: []byte(strings.Repeat("ab", 32))}})
	if err != nil {
		t.Fatal(err)
	}
	r := sampleRecord()
	r.Labels = nil
	m := NewMask(nil)
	buf := r.appendJSON(nil, m, kr)
	if n := testing.AllocsPerRun(200, func() { buf = r.appendJSON(buf[:0], m, kr) }); n > 1 {
		t.Fatalf("sealed appendJSON: %v allocs/op, want at most 1", n)
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	r := sampleRecord()
	r.Labels = nil
	buf := r.AppendJSON(nil)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
}
