package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/delivery"
)

// BenchmarkEnqueueFinish is the store's work per webhook of a queued route: 64 concurrent
// enqueues of one 2 KB record each (as the gateway's connections make them, so they share
// commits), a claim, and a first attempt finished delivered, under the gateway's default
// max_pending (so bounded, as a gateway's store is) and beside a backlog of 2000 pending
// deliveries (a gateway under this load has one of 500-4000). cpu-us/op is the process's
// CPU (user+system) per webhook: the figure that matters on a shared machine.
func BenchmarkEnqueueFinish(b *testing.B) {
	s, err := Open(Options{Path: filepath.Join(b.TempDir(), "d.db"), MaxPending: 1_000_000})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	body := make([]byte, 2048)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	headers := []delivery.Header{{Name: "Content-Type", Value: "application/json"}, {Name: "X-GitHub-Event", Value: "push"},
		{Name: "X-Hub-Signature-256", Value: "sha256=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}}
	var owners atomic.Int64
	ctx := context.Background()
	later := time.Now().Add(time.Hour) // the backlog is not due while the benchmark runs
	backlog := make([]*delivery.Record, 2000)
	for i := range backlog {
		backlog[i] = &delivery.Record{ID: delivery.NewID(), Route: "github", DecisionID: delivery.NewID(), ReceivedAt: later,
			Method: "POST", URI: "/hooks/github", Headers: headers, Body: body, NextAt: later}
	}
	if err := s.Enqueue(ctx, backlog...); err != nil {
		b.Fatal(err)
	}
	// The backlog is the file's, not in the claims' memory (as records past maxFresh are
	// not): its later next_at would cost every fresh record an insertion before it.
	s.lmu.Lock()
	s.fresh, s.stale = freshQueue{byID: map[string]*delivery.Record{}}, true
	s.lmu.Unlock()
	b.SetParallelism(32) // 64 goroutines on 2 cores: the benchmark's 64 connections
	b.ReportAllocs()
	cpu0, commits0, wrote0 := cpuTime(), s.commits.Load(), written()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		owner := "w" + string(rune('a'+owners.Add(1)%26))
		for pb.Next() {
			now := time.Now()
			r := &delivery.Record{ID: delivery.NewID(), Route: "github", DecisionID: delivery.NewID(), ReceivedAt: now,
				Method: "POST", URI: "/hooks/github", Headers: headers, Body: body, NextAt: now}
			if err := s.Enqueue(ctx, r); err != nil {
				b.Error(err)
				return
			}
			got, err := s.Claim(ctx, owner, time.Now(), time.Minute, 1, delivery.Routes{})
			if err != nil {
				b.Error(err)
				return
			}
			for _, c := range got {
				res := delivery.Result{Attempt: delivery.Attempt{N: c.Attempts + 1, At: time.Now(), Status: 200, Latency: time.Millisecond},
					State: delivery.StateDelivered}
				if err := s.Finish(ctx, c.ID, owner, res); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
	b.ReportMetric(float64(s.commits.Load()-commits0)/float64(b.N), "commits/op")
	if wrote0 >= 0 {
		b.ReportMetric(float64(written()-wrote0)/float64(b.N), "written-B/op")
	}
}

// written is how many bytes the process has written (Linux: wchar of /proc/self/io), or
// -1: the log and the checkpoint's writes per webhook, a figure the machine's load does
// not move.
func written() int64 {
	raw, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}

// cpuTime is the process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
