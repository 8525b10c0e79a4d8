//go:build !race

package decisionlog

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery"
)

// TestEncodeAllocations: encoding a record (masking, body, shadow, result) into a warm buffer
// allocates nothing; only a policy's labels object (json.Marshal) would.
func TestEncodeAllocations(t *testing.T) {
	r := sampleRecord()
	r.Labels = nil
	// A filter that failed with on_error = "skip", and a credential the policy was handed:
	// nothing to mask in the error, nothing allocated for it.
	r.Filters = append(r.Filters, FilterResult{Name: "f", Outcome: FilterSkipped, Error: "guest trapped"})
	r.Sensitive = []string{"k3y-handed-to-a-builtin"}
	m := NewMask([]string{"X-Internal-*"})
	var st stamps
	buf := r.appendJSON(nil, m, nil, &st)
	if n := testing.AllocsPerRun(200, func() { buf = r.appendJSON(buf[:0], m, nil, &st) }); n != 0 {
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
	buf := r.appendJSON(nil, m, kr, nil)
	if n := testing.AllocsPerRun(200, func() { buf = r.appendJSON(buf[:0], m, kr, nil) }); n > 1 {
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

// BenchmarkLog is one request's decision-log cost on the benchmark's reference route (README
// "Performance"): the record encoded with the Logger's mask and queued into the batch.
func BenchmarkLog(b *testing.B) {
	l := New(io.Discard, nil, Options{})
	defer l.Close()
	r := &Record{
		DecisionID: "a7f194196d680824000000000001e040", Time: time.Date(2026, 12, 5, 2, 12, 4, 929974309, time.UTC),
		Route: "reference", Policy: "bench.reference", Revision: "3111596f8a21", PolicyRevision: "7ea65f2e8539",
		RemoteIP: "127.0.0.1", Method: "POST", Path: "/reference", Outcome: OutcomeAllowed, Status: 200,
		Result:  Result{Evaluated: true, Allow: true},
		Filters: []FilterResult{{Name: "tiny", Outcome: "next", Micros: 2}},
		Headers: []Header{
			{"Host", "127.0.0.1:18080"}, {"Content-Length", "2048"}, {"Content-Type", "application/json"},
			{"X-Github-Event", "push"}, {"X-Hub-Signature-256", "sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"},
			{"X-Github-Delivery", "051909f7141c927b-r2-reference-t1-49021"},
		},
		PolicyMicros: 5, FilterMicros: 3, UpstreamMicros: 225, TotalMicros: 242,
	}
	b.ReportAllocs()
	for b.Loop() {
		l.Log(r)
	}
}
