package redis

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/redistest"
	"github.com/hookwall/hookwall/engine/state"
)

// reportLatency adds p50 and p99 of the samples, in µs, to the benchmark output.
func reportLatency(b *testing.B, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	at := func(q float64) float64 {
		return float64(samples[int(q*float64(len(samples)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkAdmit is the latency one request adds with Redis on loopback: rate limit and
// dedupe claim together, one round trip.
func BenchmarkAdmit(b *testing.B) {
	srv := redistest.Start(b)
	s := newStore(b, Options{URL: srv.URL(), Timeout: time.Second})
	ctx := context.Background()
	c := state.Check{RateLimit: state.RateLimit{Key: "sender", Limit: 1 << 30, Per: time.Second}, Dedupe: state.Dedupe{TTL: time.Minute}}
	if _, err := s.Admit(ctx, &state.Check{RateLimit: state.RateLimit{Key: "warm", Limit: 1, Per: time.Second}}); err != nil {
		b.Fatal(err) // loads the script and opens a connection outside the measurement
	}
	samples := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Dedupe.Key = "delivery-" + strconv.Itoa(i)
		start := time.Now()
		a, err := s.Admit(ctx, &c)
		samples = append(samples, time.Since(start))
		if err != nil || a.Dedupe != state.DedupeNew {
			b.Fatalf("%+v %v", a, err)
		}
	}
	reportLatency(b, samples)
}

// BenchmarkAdmitParallel: 8×GOMAXPROCS concurrent requests at a time (the pool is shared).
func BenchmarkAdmitParallel(b *testing.B) {
	srv := redistest.Start(b)
	s := newStore(b, Options{URL: srv.URL(), Timeout: time.Second})
	var mu sync.Mutex
	var samples []time.Duration
	var workers atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		local := make([]time.Duration, 0, 1<<12)
		c := state.Check{RateLimit: state.RateLimit{Key: "sender", Limit: 1 << 30, Per: time.Second}, Dedupe: state.Dedupe{TTL: time.Minute}}
		id := "w" + strconv.FormatInt(workers.Add(1), 10)
		for i := 0; pb.Next(); i++ {
			c.Dedupe.Key = id + "-" + strconv.Itoa(i)
			start := time.Now()
			a, err := s.Admit(ctx, &c)
			local = append(local, time.Since(start))
			if err != nil || a.Dedupe != state.DedupeNew {
				b.Errorf("%+v %v", a, err)
				return
			}
		}
		mu.Lock()
		samples = append(samples, local...)
		mu.Unlock()
	})
	reportLatency(b, samples)
}
