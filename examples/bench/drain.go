package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/valyala/fasthttp"
)

// The queued route of the benchmark's config, which the drain mode fills.
const (
	queuedRoute = "reference-queued"
	queuedPath  = "/reference-queued"
)

// drainOpts are the drain mode's flags.
type drainOpts struct {
	outage time.Duration // how long the upstream is down while requests come
	rate   int           // requests per second sent meanwhile
	procs  int           // GOMAXPROCS of the gateway and the upstream
}

// drainBench measures how fast a backlog is delivered: the upstream is down while requests
// come to the queued route at a fixed rate for the outage, then it comes up, and the
// backlog drains to it. The drain rate is the upstream's own: the distinct deliveries it
// received over the time from its first to its last. The run is VOID unless every 202 is
// a row and every row was delivered, under a distinct id, none dead.
func drainBench(ctx context.Context, o benchOpts, d drainOpts, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "bench -drain: %v\n", err)
		return 1
	}
	if c, err := net.DialTimeout("tcp", o.upstream, 200*time.Millisecond); err == nil {
		c.Close()
		return fail(fmt.Errorf("the upstream's address %s is in use by another process", o.upstream))
	}
	if o.deliveries != "" {
		removeSQLite(o.deliveries)
	}
	if err := os.Truncate(o.decisions, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(fmt.Errorf("decision log: %w", err))
	}
	servers, load := cpuPlan(d.procs, runtime.NumCPU())
	if _, err := exec.LookPath("taskset"); err != nil {
		servers, load = "", ""
	}
	var running []*exec.Cmd
	defer func() {
		for i := len(running) - 1; i >= 0; i-- {
			_ = signalBenchProc(running[i], syscall.SIGTERM)
			_ = running[i].Wait()
		}
	}()
	start := func(name string, argv []string, ready string) error {
		if servers != "" {
			argv = append([]string{"taskset", "-c", servers}, argv...)
		}
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(d.procs))
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		running = append(running, cmd)
		if err := waitTCP(ctx, ready, 60*time.Second); err != nil {
			return fmt.Errorf("%s did not start: %w", name, err)
		}
		return nil
	}
	if err := start("hookwall", []string{o.hookwall, "run", "-c", o.cfgPath}, o.gateway); err != nil {
		return fail(err)
	}
	admin := adminAPI{o.admin, o.adminToken}
	dlog := &decisionLog{path: o.decisions}
	placement := "unpinned"
	if servers != "" {
		placement = "servers on CPU " + servers + ", sender on CPU " + load
	}
	fmt.Fprintf(stdout, "\ndrain: GOMAXPROCS=%d (%s); upstream down for %v while %d requests/s come to %s\n",
		d.procs, placement, d.outage, d.rate, queuedPath)

	body := benchBody(o.body)
	prefix, err := deliveryPrefix(0, "drain")
	if err != nil {
		return fail(err)
	}
	s := sendAtRate(ctx, o.gateway, queuedPath, d.rate, d.outage, body, signGitHub([]byte("bench-secret"), body), prefix)
	fmt.Fprintf(stdout, "outage: sent %d in %v (%.0f/s), %d accepted (202), %d refused or failed\n",
		s.sent, s.elapsed.Round(time.Millisecond), float64(s.sent)/s.elapsed.Seconds(), s.accepted, s.sent-s.accepted)
	before, err := statusDepth(admin, queuedRoute)
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "backlog: %d pending (status page)\n", before.Pending)

	up := time.Now()
	if err := start("upstream", []string{o.self, "node", "upstream", o.upstream}, o.upstream); err != nil {
		return fail(err)
	}
	// The status page, each second, until everything stored was delivered (the route's
	// circuit breaker, open since the outage, lets a probe through within its cooldown).
	var last routeDepth
	var ids received
	deadline := time.Now().Add(10 * time.Minute)
	for tick := time.NewTicker(time.Second); ; <-tick.C {
		if last, err = statusDepth(admin, queuedRoute); err != nil {
			return fail(err)
		}
		if ids, err = upstreamIDs(o.upstream); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "  +%3.0fs  status page: pending %6d  delivered %6d  dead %d; upstream received %d\n",
			time.Since(up).Seconds(), last.Pending, last.Delivered, last.Dead, ids.distinct)
		if (last.Pending == 0 && ids.distinct >= last.rows()) || time.Now().After(deadline) || ctx.Err() != nil {
			tick.Stop()
			break
		}
	}
	q := queuedTally{rows: last.rows(), delivered: ids.distinct, dups: ids.dups, dead: last.Dead}
	void := q.void(s.accepted)
	if void == "" {
		// The log's writer flushes in batches: wait for it to settle.
		t := tally{decisions: map[string]uint64{}}
		if err := settle(ctx, o.upstream, 0, dlog, queuedRoute, &t); err != nil {
			return fail(err)
		}
		if t.decisions["queued"] != s.accepted || t.decisions["delivered"] != ids.distinct {
			void = fmt.Sprintf("the decision log shows %v for %d accepted and %d delivered", t.decisions, s.accepted, ids.distinct)
		}
	}
	span := ids.last.Sub(ids.first)
	fmt.Fprintf(stdout, "drain: %d deliveries in %v from the first to the last the upstream received = %.0f deliveries/s; the first came %v after the upstream was up; %d re-delivered\n",
		ids.distinct, span.Round(time.Millisecond), float64(ids.distinct)/max(span.Seconds(), 1e-3),
		ids.first.Sub(up).Round(time.Millisecond), ids.dups)
	fmt.Fprintf(stdout, "load average: %s\n", loadAverage())
	if void != "" {
		fmt.Fprintf(stdout, "VOID: %s\n", void)
		return 1
	}
	fmt.Fprintln(stdout, "audit: ok (every 202 stored once and delivered under a distinct id, none dead)")
	return 0
}

// sent is what sendAtRate did.
type sent struct {
	sent, accepted uint64
	elapsed        time.Duration
}

// sendAtRate sends signed POSTs to addr+path at rate per second for d, each with a fresh
// delivery id: a pacer releases them on schedule to a pool of senders, so a slow answer
// does not slow the rate down (until the pool is exhausted).
func sendAtRate(ctx context.Context, addr, path string, rate int, d time.Duration, body []byte, sig, prefix string) sent {
	const senders = 256
	hc := &fasthttp.HostClient{Addr: addr, MaxConns: senders, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	due := make(chan uint64, senders)
	var accepted, total atomic.Uint64
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for n := range due {
				req.Reset()
				req.SetRequestURI("http://" + addr + path)
				req.Header.SetMethod("POST")
				req.Header.SetContentType("application/json")
				req.Header.Set("X-GitHub-Event", "push")
				req.Header.Set("X-Hub-Signature-256", sig)
				req.Header.Set("X-GitHub-Delivery", prefix+"-"+strconv.FormatUint(n, 10))
				req.SetBodyRaw(body)
				total.Add(1)
				if err := hc.Do(req, resp); err == nil && resp.StatusCode() == fasthttp.StatusAccepted {
					accepted.Add(1)
				}
			}
		})
	}
	start := time.Now()
	var n uint64
	for t := time.NewTicker(time.Millisecond); ctx.Err() == nil; <-t.C {
		el := time.Since(start)
		if el >= d {
			t.Stop()
			break
		}
		for want := uint64(el.Seconds() * float64(rate)); n < want; {
			n++
			due <- n
		}
	}
	close(due)
	wg.Wait()
	return sent{sent: total.Load(), accepted: accepted.Load(), elapsed: time.Since(start)}
}

// loadAverage is the machine's load average (1, 5 and 15 minutes), or "n/a".
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(raw))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}
