//go:build !race

package gateway

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/state"
	"github.com/hookwall/hookwall/engine/state/memory"
)

// TestReplayKeysBoundedInMemory sends thousands of requests through the real gateway whose
// dedupe key (the policy reads it from X-Delivery) is a distinct 14 KB header each time. The
// memory store holds each key as its 71-byte digest: its byte accounting and the process heap
// grow by a few hundred bytes per key, not 14 KB, replays of a long key are still caught, and
// past [state] max_bytes the entries nearest to expiry are evicted and counted.
func TestReplayKeysBoundedInMemory(t *testing.T) {
	// An upstream that takes 14 KB headers and keeps nothing of them.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	upSrv := &fasthttp.Server{ReadBufferSize: 64 << 10, Handler: func(ctx *fasthttp.RequestCtx) { ctx.SetBodyString("ok") }}
	go upSrv.Serve(ln) //nolint:errcheck
	t.Cleanup(func() { _ = upSrv.Shutdown() })
	cfg := strings.NewReplacer("{{UPSTREAM}}", "http://"+ln.Addr().String(), "{{EXTRA}}", "", "{{DECISIONS}}", "off").Replace(hardConfig)
	cfg = strings.Replace(cfg, `max_header = "8KiB"`, `max_header = "32KiB"`, 1)
	cfg += "\n[state]\nmax_bytes = \"1MiB\"\n"
	e := startEnv(t, cfg, map[string]string{"policies/hard.rego": hardPolicy}, Options{})
	ms := e.g.store.Backend().(*memory.Store)

	pad := strings.Repeat("p", 14<<10)
	id := func(i int) string { return fmt.Sprintf("%08d-%s", i, pad) }
	send := func(from, to int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := from + w; i < to; i += 8 {
					if r := e.do("POST", "/hook", []byte("{}"), map[string]string{"X-Delivery": id(i)}); r.Status != 200 || r.Header.Get("Hookwall-Duplicate") != "" {
						errs <- fmt.Sprintf("request %d: %d %q", i, r.Status, r.Body)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	wantDuplicate := func(i int) {
		t.Helper()
		r := e.do("POST", "/hook", []byte("{}"), map[string]string{"X-Delivery": id(i)})
		if r.Status != 200 || r.Header.Get("Hookwall-Duplicate") != "true" {
			t.Fatalf("replay of key %d: %d %v, want 200 with Hookwall-Duplicate", i, r.Status, r.Header)
		}
	}

	// 2000 keys fit: every one is held, as a digest.
	const first = 2000
	before := heap()
	send(0, first)
	grown := int64(heap()) - int64(before)
	st := ms.Stats()
	perKey := int64(len(state.StoreKey(id(0)))) + memory.EntryOverhead
	if st.Keys != first || st.Evictions != 0 || st.Bytes != first*perKey {
		t.Fatalf("after %d keys: %+v, want %d keys of %d bytes each and no evictions", first, st, first, perKey)
	}
	// Held whole, the keys alone would be 2000 × 14 KB = 28 MiB.
	if limit := int64(8 << 20); grown > limit {
		t.Errorf("heap grew %d bytes over %d long keys, want under %d", grown, first, limit)
	}
	wantDuplicate(0)

	// 4000 more pass the 1 MiB bound: the oldest go, counted; the newest are still caught.
	const total = first + 4000
	send(first, total)
	st = ms.Stats()
	if st.Bytes > 1<<20 || st.Keys < (1<<20)*8/10/int(perKey) {
		t.Errorf("after %d keys: %+v, want at most 1 MiB counted and the store near full", total, st)
	}
	// At least every key past the bound; a claim evicted while in flight is inserted again by
	// its commit and evicts one more.
	if least := uint64(total - st.Keys); st.Evictions < least {
		t.Errorf("evictions %d, want at least %d (every key past the bound)", st.Evictions, least)
	}
	wantDuplicate(total - 1)
	fams := scrapeMetrics(t, e)
	if got := metricValue(fams, "hookwall_state_bytes", nil); got != float64(ms.Stats().Bytes) {
		t.Errorf("hookwall_state_bytes = %v, want %d", got, ms.Stats().Bytes)
	}
	if got := metricValue(fams, "hookwall_state_evictions_total", nil); got != float64(ms.Stats().Evictions) {
		t.Errorf("hookwall_state_evictions_total = %v, want %d", got, ms.Stats().Evictions)
	}
	// Dedupe keys alone fill this store: every eviction is one.
	if got := metricValue(fams, "hookwall_state_dedupe_evictions_total", nil); got == 0 || got != float64(ms.Stats().DedupeEvictions) {
		t.Errorf("hookwall_state_dedupe_evictions_total = %v, want %d (and some)", got, ms.Stats().DedupeEvictions)
	}
}
