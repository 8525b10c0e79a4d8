//go:build !race

package decisionlog

import "testing"

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

func BenchmarkAppendJSON(b *testing.B) {
	r := sampleRecord()
	r.Labels = nil
	buf := r.AppendJSON(nil)
	b.ReportAllocs()
	for b.Loop() {
		buf = r.AppendJSON(buf[:0])
	}
}
