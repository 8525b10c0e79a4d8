package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"
)

// The report's ratio pairs each round's run with the bare proxy's run of the same round: on
// a machine whose load moves between rounds, the ratio of the two medians would mix rounds.
func TestBenchReportPairsRounds(t *testing.T) {
	run := func(rps int, p99 time.Duration) benchResult {
		return benchResult{requests: uint64(rps), elapsed: time.Second, p50: p99 / 2, p99: p99, cpu: time.Duration(rps) * 100 * time.Microsecond}
	}
	results := map[string][]benchResult{
		"bare":      {run(10, 2*time.Millisecond), run(40, 2*time.Millisecond), run(20, 4*time.Millisecond)},
		"reference": {run(9, 4*time.Millisecond), run(30, 6*time.Millisecond), run(10, 4*time.Millisecond)},
	}
	all := map[string]benchSetup{"bare": {name: "bare fasthttp proxy"}, "reference": {name: "hookwall, reference"}}
	var out bytes.Buffer
	printBenchReport(&out, []string{"bare", "reference"}, all, results)
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "hookwall, reference") {
			line = l
		}
	}
	// Paired: 0.9, 0.75, 0.5 → median 0.75 (the medians' ratio would say 10/20 = 0.50);
	// p99: 2, 3, 1 → 2.
	for _, want := range []string{" 0.75× ", " 0.50–0.90 ", " 2.00× "} {
		if !strings.Contains(line, want) {
			t.Errorf("report line %q lacks %q\n%s", line, want, out.String())
		}
	}
}

// The CPU ratio is the bare proxy's CPU per request over the setup's, paired by round.
func TestBenchReportCPURatio(t *testing.T) {
	run := func(reqs int, cpuPerReq time.Duration) benchResult {
		return benchResult{requests: uint64(reqs), elapsed: time.Second, p50: time.Millisecond, p99: 2 * time.Millisecond, cpu: time.Duration(reqs) * cpuPerReq,
			upCPU: time.Duration(reqs) * cpuPerReq / 4}
	}
	results := map[string][]benchResult{
		"bare":      {run(10, 20*time.Microsecond), run(40, 30*time.Microsecond), run(20, 20*time.Microsecond)},
		"reference": {run(9, 40*time.Microsecond), run(30, 50*time.Microsecond), run(10, 80*time.Microsecond)},
	}
	all := map[string]benchSetup{"bare": {name: "bare fasthttp proxy"}, "reference": {name: "hookwall, reference"}}
	var out bytes.Buffer
	printBenchReport(&out, []string{"bare", "reference"}, all, results)
	// Paired: 20/40, 30/50, 20/80 → 0.50, 0.60, 0.25: median 0.50. The upstream's CPU a
	// request is the median run's by throughput, as the CPU a request is: the third of each,
	// 80/4 µs for the reference and 20/4 µs for the bare proxy.
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "hookwall, reference") && (!strings.Contains(l, " 0.50× ") || !strings.HasSuffix(strings.TrimSpace(l), " 20.0")) {
			t.Errorf("report line %q lacks the CPU ratio 0.50× or the upstream's 20.0 µs a request\n%s", l, out.String())
		}
		if strings.Contains(l, "bare fasthttp proxy") && !strings.HasSuffix(strings.TrimSpace(l), " 5.0") {
			t.Errorf("report line %q lacks the upstream's 5.0 µs a request\n%s", l, out.String())
		}
	}
}

// A setup against its baseline is also paired in the upstream's CPU: each run's CPU over the
// upstream's in the same run, so a core that ran slower in one of the two runs (both
// processes' CPU a request up alike) does not read as a change.
func TestBenchReportBaselineInUpstreamCPU(t *testing.T) {
	run := func(reqs int, cpuPerReq, upPerReq time.Duration) benchResult {
		return benchResult{requests: uint64(reqs), elapsed: time.Second, p50: time.Millisecond, p99: 2 * time.Millisecond,
			cpu: time.Duration(reqs) * cpuPerReq, upCPU: time.Duration(reqs) * upPerReq}
	}
	us := time.Microsecond
	results := map[string][]benchResult{
		"bare": {run(100, 10*us, 5*us), run(100, 10*us, 5*us), run(100, 10*us, 5*us)},
		// The change at 30 µs against 7.5 of the upstream's (4.0); the baseline at 40 against
		// 10 (4.0), 30 against 6 (5.0) and 36 against 9 (4.0) on a core that moved.
		"reference":          {run(50, 30*us, 7500*time.Nanosecond), run(50, 30*us, 7500*time.Nanosecond), run(50, 30*us, 7500*time.Nanosecond)},
		"reference@baseline": {run(50, 40*us, 10*us), run(50, 30*us, 6*us), run(50, 36*us, 9*us)},
	}
	all := map[string]benchSetup{"bare": {name: "bare fasthttp proxy"}, "reference": {name: "hookwall, reference"},
		"reference@baseline": {name: "hookwall, reference (baseline)"}}
	var out bytes.Buffer
	printBenchReport(&out, []string{"bare", "reference", "reference@baseline"}, all, results)
	// CPU per request: 0.75, 1.00, 0.833 → 0.833; over the upstream's: 1.00, 0.80, 1.00 → 1.00.
	want := "hookwall, reference against its baseline, paired by round: throughput 1.000× (1.000–1.000), CPU per request 0.833× (0.750–1.000), CPU over the upstream's 1.000× (0.800–1.000)"
	if !strings.Contains(out.String(), want) {
		t.Errorf("the report lacks\n%s\n%s", want, out.String())
	}
}

// A gateway's tail is set beside the control's, paired by round: its p99 over p50 divided by
// the control's, so that a round where both ran slower does not read as a fatter tail, and
// the median of the rounds' quotients is reported, not the quotient of the medians.
func TestBenchReportTailAgainstControl(t *testing.T) {
	run := func(rps int, p50, p99 time.Duration) benchResult {
		return benchResult{requests: uint64(rps), elapsed: time.Second, p50: p50, p99: p99}
	}
	ms := time.Millisecond
	results := map[string][]benchResult{
		"bare": {run(100, ms, 2*ms), run(100, ms, 2*ms), run(100, ms, 2*ms)},
		// The control's p99/p50: 2, 2, 3; the reference's: 2.4, 3, 3.
		"control":   {run(50, 2*ms, 4*ms), run(40, 3*ms, 6*ms), run(60, 2*ms, 6*ms)},
		"reference": {run(40, 2500*time.Microsecond, 6*ms), run(40, 2*ms, 6*ms), run(30, 3*ms, 9*ms)},
		"nginx":     {run(90, ms, 2*ms), run(90, ms, 2*ms), run(90, ms, 2*ms)},
	}
	all := map[string]benchSetup{"bare": {name: "bare fasthttp proxy"}, "control": {name: "bare proxy + 10 × SHA-256 of the body"},
		"reference": {name: "hookwall, reference", route: "reference"}, "nginx": {name: "nginx (no policy)"}}
	var out bytes.Buffer
	printBenchReport(&out, []string{"bare", "control", "reference", "nginx"}, all, results)
	// Shapes over the control's: 1.2, 1.5, 1.0 → 1.2; throughput: 0.8, 1.0, 0.5 → 0.8.
	want := "hookwall, reference against the control, paired by round: p99 over p50 1.200× (1.000–1.500) of the control's, at 0.800× (0.500–1.000) its throughput"
	if !strings.Contains(out.String(), want) {
		t.Errorf("the report lacks\n%s\n%s", want, out.String())
	}
	// Only hookwall's setups: not the bare proxy, the control itself or a peer.
	if n := strings.Count(out.String(), "against the control"); n != 1 {
		t.Errorf("%d setups are set beside the control, want hookwall's one:\n%s", n, out.String())
	}
	// Without a control in the run there is nothing to set the tail beside.
	delete(results, "control")
	out.Reset()
	printBenchReport(&out, []string{"bare", "reference"}, all, results)
	if strings.Contains(out.String(), "against the control") {
		t.Errorf("a run without the control reports a tail against it:\n%s", out.String())
	}
}

// TestRoundOrder: the warm-up and odd rounds run the setups as given, even rounds reversed,
// so that over rounds 1 and 2 every setup runs once before and once after every other.
func TestRoundOrder(t *testing.T) {
	setups := []string{"bare", "control", "reference", "reference@baseline"}
	for _, r := range []int{0, 1, 3} {
		if got := roundOrder(setups, r); !slices.Equal(got, setups) {
			t.Errorf("round %d runs %v, want the order given", r, got)
		}
	}
	before := func(order []string, a, b string) bool { return slices.Index(order, a) < slices.Index(order, b) }
	one, two := roundOrder(setups, 1), roundOrder(setups, 2)
	for _, a := range setups {
		for _, b := range setups {
			if a != b && before(one, a, b) == before(two, a, b) {
				t.Errorf("%s runs %s %s in rounds 1 and 2 alike: %v, %v", a, map[bool]string{true: "before", false: "after"}[before(one, a, b)], b, one, two)
			}
		}
	}
	if !slices.Equal(setups, []string{"bare", "control", "reference", "reference@baseline"}) {
		t.Errorf("roundOrder changed its argument: %v", setups)
	}
}
