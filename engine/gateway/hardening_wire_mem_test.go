//go:build !race

package gateway

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// allocPerRequest returns the heap bytes the process (the gateway, its upstream and the raw
// client) allocates per exchange of raw, averaged over n, each answered with want.
func allocPerRequest(t *testing.T, addr, raw string, n, want int) uint64 {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		res := rawExchange(t, nil, addr, []byte(raw), false, 10*time.Second)
		if len(res.statuses) != 1 || res.statuses[0] != want {
			t.Fatalf("got %s, want %d: %q", res, want, res.raw)
		}
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(n)
}

// TestHardeningHeaderRepeatsCost sends 1,000 and then 2,000 repeats of one header name (and
// as many distinct names) to a route whose policy reads the headers, with max_headers raised
// out of the way: the heap a request costs grows linearly with the fields (2× the fields ≤
// 2.5× the bytes), where joining each repeat into the value so far grew it quadratically.
func TestHardeningHeaderRepeatsCost(t *testing.T) {
	up := startUpstream(t)
	e := startWire(t, up.URL(), "max_headers = 5000\nmax_header = \"128KiB\"")
	pub, _ := e.g.Addrs()
	block := func(n int, distinct bool) string {
		var b strings.Builder
		// The policy reads the headers, then refuses: the test upstream's buffer is small.
		b.WriteString("POST /hooks/a HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nX-Internal-User: 1\r\n")
		for i := range n {
			if distinct {
				b.WriteString("X-N" + strconv.Itoa(i) + ": vvvvvvvvvvvvvvvv\r\n")
			} else {
				b.WriteString("X-Same: vvvvvvvvvvvvvvvv\r\n")
			}
		}
		b.WriteString("\r\n")
		return b.String()
	}
	for _, distinct := range []bool{false, true} {
		one := allocPerRequest(t, pub.String(), block(1000, distinct), 10, 403)
		two := allocPerRequest(t, pub.String(), block(2000, distinct), 10, 403)
		t.Logf("distinct names %v: 1,000 fields %d KiB per request, 2,000 fields %d KiB", distinct, one>>10, two>>10)
		// Linear cost doubles; the quadratic join it replaced grew 4.5×. The bound leaves room
		// for the process's other allocations (a sampled cross-check, the log) during a run.
		if float64(two) > 3*float64(one) {
			t.Errorf("distinct names %v: twice the fields cost %.1f× the heap, want ≤ 3×", distinct, float64(two)/float64(one))
		}
	}
}

// TestHardeningJSONAmplificationCost sends 1MiB of "[{},{},…]" (and a 1MiB payload of
// one-key objects, and a 9,000-level nesting) to a route whose policy reads
// input.request.json: each is refused before the policy runs, and a request costs a bounded
// heap (a few MiB), where the parse through encoding/json's interface{} values took ~350MiB.
func TestHardeningJSONAmplificationCost(t *testing.T) {
	up := startUpstream(t)
	e := startWire(t, up.URL(), "")
	pub, _ := e.g.Addrs()
	post := func(body string) string {
		return "POST /json/a HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	const mib = 1 << 20
	for _, c := range []struct {
		name    string
		body    string
		status  int
		ceiling uint64
	}{
		{"empty objects", "[" + strings.Repeat("{},", (mib-2)/3-1) + "{}]", 413, 16 * mib},
		{"one-key objects", "[" + strings.Repeat(`{"":0},`, (mib-2)/7-1) + `{"":0}]`, 413, 48 * mib},
		{"deep", strings.Repeat("[", 9000) + strings.Repeat("]", 9000), 422, 4 * mib},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			per := allocPerRequest(t, pub.String(), post(c.body), 4, c.status)
			t.Logf("%d KiB body: %d KiB of heap per request, %v per request", len(c.body)>>10, per>>10, time.Since(start)/4)
			if per > c.ceiling {
				t.Errorf("%d MiB of heap per request, over %d MiB", per>>20, c.ceiling>>20)
			}
		})
	}
	if n := len(up.requests()); n != 0 {
		t.Errorf("upstream saw %d requests, want none", n)
	}
}
