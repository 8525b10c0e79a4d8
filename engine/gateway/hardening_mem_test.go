//go:build !race

package gateway

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// endless is a request body that never ends (and allocates nothing): what an attacker streams.
type endless struct{ sent int64 }

func (e *endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	e.sent += int64(len(p))
	if e.sent > 1<<30 {
		return 0, io.EOF
	}
	return len(p), nil
}

// TestHardeningMemoryCeiling sends near-max_body bodies from 32 concurrent clients, 8 rounds
// each (256 MiB in all), while 16 more clients stream endless chunked bodies and 16 declare
// 1GiB. The gateway's heap must stay within a few max_body per concurrent request: it grows
// with concurrency, never with the volume sent or the size an attacker declares.
func TestHardeningMemoryCeiling(t *testing.T) {
	fu := startFaultUpstream(t)
	cfg := strings.NewReplacer("{{UPSTREAM}}", fu.URL(), "{{EXTRA}}", "", "{{DECISIONS}}", "off").Replace(hardConfig)
	cfg = strings.Replace(cfg, `max_body = "64KiB"`, `max_body = "1MiB"`, 1)
	cfg = strings.Replace(cfg, `read_timeout = "2s"`, `read_timeout = "10s"`, 1)
	e := startEnv(t, cfg, map[string]string{"policies/hard.rego": hardPolicy}, Options{})
	const maxBody, legit, rounds, attackers = 1 << 20, 32, 8, 32

	body := make([]byte, maxBody-512) // one shared buffer: the clients cost no heap per request
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap, baseRSS := ms.HeapInuse, rss(t)

	var peakHeap, peakRSS atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(5 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peakHeap.Load() {
				peakHeap.Store(m.HeapInuse)
			}
			if r := rss(t); r > peakRSS.Load() {
				peakRSS.Store(r)
			}
		}
	}()

	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: legit + attackers}}
	var ok, refused atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < legit; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				r, err := client.Post(e.base+"/ok", "application/octet-stream", bytes.NewReader(body))
				if err != nil {
					t.Errorf("near-max body: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, r.Body)
				r.Body.Close()
				if r.StatusCode != 200 {
					t.Errorf("near-max body: %d, want 200", r.StatusCode)
					return
				}
				ok.Add(1)
			}
		}()
	}
	for i := 0; i < attackers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("POST", e.base+"/ok", &endless{})
			if i%2 == 0 {
				req.ContentLength = 1 << 30 // declared up front: refused before any is read
			}
			r, err := client.Do(req)
			if err != nil {
				refused.Add(1) // the gateway hung up on the stream: that is a refusal too
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode != 413 {
				t.Errorf("endless body: %d, want 413", r.StatusCode)
				return
			}
			refused.Add(1)
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(stop)
	<-sampled

	// Each near-max body and each streamed one (read up to max_body, then refused) is in
	// memory at once: the request buffer and the policy input's copy, ×2 for garbage not yet
	// collected at GOGC=100.
	const concurrent, perRequest = legit + attackers/2, 4
	ceiling := uint64(concurrent * maxBody * perRequest)
	growth := peakHeap.Load() - baseHeap
	rssGrowth := peakRSS.Load() - baseRSS
	t.Logf("%d near-max bodies (%d MiB) and %d endless ones in %v: heap peak +%d MiB, RSS peak +%d MiB; ceiling %d MiB (%d concurrent × max_body × %d)",
		ok.Load(), ok.Load()*int64(len(body))>>20, refused.Load(), took, growth>>20, rssGrowth>>20, ceiling>>20, concurrent, perRequest)
	if ok.Load() != legit*rounds || refused.Load() != attackers {
		t.Fatalf("%d of %d near-max bodies forwarded, %d of %d endless ones refused", ok.Load(), legit*rounds, refused.Load(), attackers)
	}
	if growth > ceiling {
		t.Errorf("heap grew by %d MiB, over the %d MiB ceiling", growth>>20, ceiling>>20)
	}
	if rssGrowth > 2*ceiling {
		t.Errorf("RSS grew by %d MiB, over twice the %d MiB heap ceiling", rssGrowth>>20, ceiling>>20)
	}

	// Nothing is kept once the load is gone.
	client.CloseIdleConnections()
	runtime.GC()
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms)
	if left := int64(ms.HeapInuse) - int64(baseHeap); left > 32<<20 {
		t.Errorf("heap is still %d MiB over the baseline after the load", left>>20)
	}
}

// rss returns this process's resident set size in bytes (Linux), 0 when unknown.
func rss(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	return 0
}
