package main

import (
	"fmt"
	"sync"
	"time"
)

// perRequest formats CPU time over n requests in microseconds a request, or "n/a" when
// either is unknown.
func perRequest(cpu time.Duration, n uint64) string {
	if cpu <= 0 || n == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", float64(cpu.Microseconds())/float64(n))
}

// watchRun prints, every spec.watch until the returned stop is called, the requests the
// upstream served since the last line and the CPU a request of the setup's processes and of
// the upstream over that time. A round's figures average over its whole duration; on a
// shared virtual machine the core itself speeds up and slows down for seconds at a time, and
// these lines show it: the upstream's work a request is the same in every setup, so when its
// CPU a request moves with the setup's, the core moved. A sample that cannot be read (a
// process gone, the upstream not answering) prints nothing.
func watchRun(spec loadSpec, s benchSetup) (stop func()) {
	if spec.watch <= 0 || spec.watchTo == nil {
		return func() {}
	}
	type sample struct {
		at       time.Time
		cpu, up  time.Duration
		served   uint64
		readable bool
	}
	read := func() sample {
		hits, err := upstreamHits(spec.upstream)
		smp := sample{at: time.Now(), cpu: setupCPU(s.pids()), up: procCPU(spec.upstreamPID), served: hits}
		smp.readable = err == nil && smp.cpu >= 0 && smp.up >= 0
		return smp
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(spec.watch)
		defer t.Stop()
		last, start := read(), time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			now := read()
			if now.readable && last.readable && now.served > last.served {
				n := now.served - last.served
				fmt.Fprintf(spec.watchTo, "    round %d %-13s %6.1fs %8.0f rps  setup %5s µs/req  upstream %5s µs/req\n",
					spec.round, spec.setup, now.at.Sub(start).Seconds(), float64(n)/now.at.Sub(last.at).Seconds(),
					perRequest(now.cpu-last.cpu, n), perRequest(now.up-last.up, n))
			}
			last = now
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}
