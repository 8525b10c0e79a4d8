package filter

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// TestTestdataCurrent rebuilds every testdata/*.wat with wat2wasm (apt
// package wabt) and checks the committed .wasm is its output.
func TestTestdataCurrent(t *testing.T) {
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not installed (apt install wabt)")
	}
	wats, _ := filepath.Glob("testdata/*.wat")
	if len(wats) == 0 {
		t.Fatal("no testdata/*.wat")
	}
	for _, wat := range wats {
		out := filepath.Join(t.TempDir(), "out.wasm")
		if b, err := exec.Command(wat2wasm, wat, "-o", out).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", wat, err, b)
		}
		want, _ := os.ReadFile(out)
		got, err := os.ReadFile(strings.TrimSuffix(wat, ".wat") + ".wasm")
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s.wasm is stale: run wat2wasm %s -o %s.wasm", strings.TrimSuffix(wat, ".wat"), wat, strings.TrimSuffix(wat, ".wat"))
		}
	}
}

func call(t testing.TB, f *Filter, raw string) (bool, *Exchange, error) {
	t.Helper()
	ex, _, _ := newExchange(t, raw)
	inst, err := f.Acquire(testCtx)
	if err != nil {
		return false, ex, err
	}
	defer inst.Release()
	next, err := inst.HandleRequest(testCtx, ex)
	return next, ex, err
}

const getReq = "GET /hooks/x?a=1 HTTP/1.1\r\nHost: example.com\r\nX-Test: 1\r\n\r\n"

func wantKind(t testing.TB, err error, kind ErrorKind) *Error {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != kind {
		t.Fatalf("error %v, want kind %s", err, kind)
	}
	if !strings.HasPrefix(fe.Error(), "filter/"+fe.Filter+": "+string(kind)+": ") {
		t.Errorf("error text %q lacks the component prefix", fe.Error())
	}
	return fe
}

func TestInfiniteLoopTimesOut(t *testing.T) {
	h := newHost(t)
	const timeout = 50 * time.Millisecond
	loop := load(t, h, Spec{Name: "loop", Module: testdata(t, "loop.wasm"), Timeout: timeout, Pool: 1})
	tiny := load(t, h, Spec{Name: "tiny", Module: testdata(t, "tiny.wasm"), Pool: 1})

	// Another filter keeps answering while the loop spins.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var served int
	var otherErr error
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, _, err := call(t, tiny, getReq); err != nil {
				otherErr = err
				return
			}
			served++
		}
	})

	// The bound is checked on the best of three tries: the machine may be
	// busy, and a timer that fires late is not the host's fault.
	var tries []time.Duration
	var err error
	for range 3 {
		start := time.Now()
		_, _, err = call(t, loop, getReq)
		tries = append(tries, time.Since(start))
		wantKind(t, err, KindTimeout)
		if tries[len(tries)-1] <= timeout+50*time.Millisecond {
			break
		}
	}
	took := tries[len(tries)-1]
	close(stop)
	wg.Wait()

	if took > timeout+50*time.Millisecond {
		t.Errorf("loop stopped after %v, want within %v", tries, timeout+50*time.Millisecond)
	}
	if took < timeout {
		t.Errorf("loop stopped after %v, before its %v deadline", took, timeout)
	}
	if otherErr != nil || served == 0 {
		t.Errorf("other filter served %d calls meanwhile, err %v", served, otherErr)
	}
	if st := loop.Stats(); st.Discarded != uint64(len(tries)) || st.Errors.Timeout != uint64(len(tries)) {
		t.Errorf("stats %+v, want %d discarded and timeouts", st, len(tries))
	}
	t.Logf("timeout after %v; other filter served %d calls meanwhile", took, served)
}

func TestMemoryGrowIsCapped(t *testing.T) {
	h := newHost(t)
	const capBytes = 1 << 20 // 16 pages
	f := load(t, h, Spec{Name: "grow", Module: testdata(t, "grow.wasm"), Memory: capBytes, Pool: 1})

	// Observe the guest's memory at the moment it traps.
	ex, _, _ := newExchange(t, getReq)
	inst, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = inst.HandleRequest(testCtx, ex)
	pages, _ := inst.mod.Memory().Grow(0)
	inst.Release()
	wantKind(t, err, KindOOM)
	if pages != capBytes/pageSize {
		t.Errorf("guest reached %d pages, cap is %d", pages, capBytes/pageSize)
	}
	// Again on a fresh instance: same answer, host unharmed.
	_, _, err = call(t, f, getReq)
	wantKind(t, err, KindOOM)
	if st := f.Stats(); st.Errors.OOM != 2 || st.Discarded != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestMemoryCapRejectsLargerModule(t *testing.T) {
	// tiny declares a fixed 1-page memory; a 0-byte cap rounds up to 1 page
	// and loads, while the grow guest's 1-page minimum fits as well. A
	// module declaring more than the cap must fail at load.
	wat := filepath.Join(t.TempDir(), "big.wat")
	if err := os.WriteFile(wat, []byte(`(module (memory (export "memory") 32)
  (func (export "handle_request") (result i64) (i64.const 1)))`), 0o600); err != nil {
		t.Fatal(err)
	}
	wat2wasm, err := exec.LookPath("wat2wasm")
	if err != nil {
		t.Skip("wat2wasm not installed")
	}
	out := strings.TrimSuffix(wat, ".wat") + ".wasm"
	if b, err := exec.Command(wat2wasm, wat, "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	mod, _ := os.ReadFile(out)
	h := newHost(t)
	if _, err := h.Load(testCtx, Spec{Name: "big", Module: mod, Memory: 1 << 20}); err == nil || !strings.Contains(err.Error(), "over limit") {
		t.Errorf("load error %v, want memory over limit", err)
	}
	f := load(t, h, Spec{Name: "big", Module: mod, Memory: 4 << 20, Pool: 1})
	if next, _, err := call(t, f, getReq); err != nil || !next {
		t.Errorf("within the cap: next=%v err=%v", next, err)
	}
}

func TestUnreachableDiscardsInstance(t *testing.T) {
	up := startUpstream(t)
	f := load(t, newHost(t), Spec{Name: "unreachable", Module: testdata(t, "unreachable.wasm"), Pool: 1})
	g := startGateway(t, f, up.addr)

	for i, want := range []string{"1", "2"} {
		if resp, _ := get(t, g.url, nil, "GET", ""); resp.StatusCode != 200 {
			t.Fatalf("request %d: status %d", i, resp.StatusCode)
		}
		if got := string(up.lastRequest().Header.Peek("X-Count")); got != want {
			t.Fatalf("request %d: x-count %q, want %q", i, got, want)
		}
	}
	resp, body := get(t, g.url, http.Header{"X-Trap": {"1"}}, "GET", "")
	if resp.StatusCode != 500 || strings.Contains(body, "wasm") {
		t.Fatalf("trap: status %d body %q, want a generic 500", resp.StatusCode, body)
	}
	wantKind(t, g.errors()[0], KindTrap)
	// The next request is fine and served by a fresh instance: its counter
	// starts again at 1.
	up.set(200, "", false)
	if resp, _ := get(t, g.url, nil, "GET", ""); resp.StatusCode != 200 {
		t.Fatalf("after trap: status %d", resp.StatusCode)
	}
	if got := string(up.lastRequest().Header.Peek("X-Count")); got != "1" {
		t.Errorf("after trap: x-count %q, want 1 from a fresh instance", got)
	}
	if st := f.Stats(); st.Discarded != 1 || st.Errors.Trap != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestPoolExhaustion(t *testing.T) {
	const wait = 30 * time.Millisecond
	f := load(t, newHost(t), Spec{Name: "tiny", Module: testdata(t, "tiny.wasm"), Pool: 2, PoolMax: 2, Timeout: wait})
	if st := f.Stats(); st.Live != 2 || st.Idle != 2 || st.Created != 2 {
		t.Fatalf("pool not pre-warmed: %+v", st)
	}
	a, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = f.Acquire(testCtx)
	took := time.Since(start)
	fe := wantKind(t, err, KindPool)
	if !errors.Is(fe, ErrPoolExhausted) {
		t.Errorf("cause %v, want ErrPoolExhausted", fe.Err)
	}
	if took < wait || took > wait+time.Second {
		t.Errorf("waited %v, want %v", took, wait)
	}

	// Through HTTP: a full pool is a 503.
	g := startGateway(t, f, "")
	if resp, _ := get(t, g.url, nil, "GET", ""); resp.StatusCode != 503 {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}

	a.Release()
	b.Release()
	st := f.Stats()
	if st.Waits != 2 || st.Errors.Pool != 2 || st.InUse != 0 || st.Idle != 2 || st.Created != 2 {
		t.Errorf("stats %+v", st)
	}

	// A waiter gets the instance released meanwhile (long wait: the
	// release must win, however busy the machine).
	w := load(t, newHost(t), Spec{Name: "tiny", Module: testdata(t, "tiny.wasm"), Pool: 1, PoolMax: 1, Timeout: 10 * time.Second})
	held, err := w.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		inst, err := w.Acquire(testCtx)
		if err == nil {
			inst.Release()
		}
		done <- err
	}()
	testutil.WaitFor(t, func() bool { return w.Stats().Waits == 1 })
	held.Release()
	if err := <-done; err != nil {
		t.Errorf("waiter: %v", err)
	}
	if st := w.Stats(); st.Created != 1 || st.Idle != 1 {
		t.Errorf("waiter stats %+v", st)
	}

	// A canceled context ends the wait early.
	a, _ = f.Acquire(testCtx)
	b, _ = f.Acquire(testCtx)
	ctx, cancel := context.WithCancel(testCtx)
	cancel()
	if _, err := f.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled acquire: %v", err)
	}
	a.Release()
	b.Release()
}

// TestBadGuestInputTraps calls every host function with a bad pointer,
// length, kind or value; each must trap the guest with KindABI and leave the
// host working.
func TestBadGuestInputTraps(t *testing.T) {
	h := newHost(t)
	mod := testdata(t, "badptr.wasm")
	cases := []string{
		0: "get_config bad buf", 1: "log bad message", 2: "get_method bad buf", 3: "set_method bad ptr",
		4: "get_uri bad buf", 5: "set_uri bad ptr", 6: "get_protocol_version bad buf",
		7: "get_header_names bad buf", 8: "get_header_values bad name", 9: "get_header_values bad buf",
		10: "set_header_value bad name", 11: "set_header_value bad value", 12: "add_header_value bad name",
		13: "remove_header bad name", 14: "read_body bad buf", 15: "write_body bad buf",
		16: "get_source_addr bad buf", 17: "set_label bad key", 18: "get_route bad buf",
		19: "log offset+len wraps", 20: "read_body zero limit", 21: "get_header_names unknown kind",
		22: "set_status_code 1000", 23: "set_method with CRLF", 24: "set_header_value value with CRLF",
		25: "set_header_value trailer", 26: "write_body unknown kind", 27: "set_uri absolute",
		28: "get_uri region crosses memory end",
	}
	for n, name := range cases {
		t.Run(fmt.Sprintf("%02d %s", n, name), func(t *testing.T) {
			// A name of its own: a name's counters add up over every filter loaded under it.
			f := load(t, h, Spec{Name: fmt.Sprintf("badptr%d", n), Module: mod, Config: []byte{byte(n)}, Pool: 1})
			_, ex, err := call(t, f, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")
			wantKind(t, err, KindABI)
			if string(ex.Req.Header.Method()) != "POST" || string(ex.Req.RequestURI()) != "/" {
				t.Errorf("request changed by a trapped call: %s %s", ex.Req.Header.Method(), ex.Req.RequestURI())
			}
			if st := f.Stats(); st.Discarded != 1 {
				t.Errorf("instance not discarded: %+v", st)
			}
		})
	}
	// The same guest with no bad case runs fine: the traps above came from
	// the bad inputs.
	f := load(t, h, Spec{Name: "badptr", Module: mod, Config: []byte{99}, Pool: 1})
	if next, _, err := call(t, f, getReq); err != nil || !next {
		t.Fatalf("control case: next=%v err=%v", next, err)
	}
}

func TestHookwallModule(t *testing.T) {
	f := load(t, newHost(t), Spec{Name: "hookwall", Module: testdata(t, "hookwall.wasm"), Pool: 1})
	ex, _, _ := newExchange(t, getReq)
	ex.Route = "github"
	labels := map[string]string{}
	ex.SetLabel = func(k, v string) { labels[k] = v }
	inst, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Release()
	next, err := inst.HandleRequest(testCtx, ex)
	if err != nil || !next {
		t.Fatalf("next=%v err=%v", next, err)
	}
	if labels["route"] != "github" || labels["verdict"] != "ok" || len(labels) != 2 {
		t.Errorf("labels %v", labels)
	}
	if f.HasResponsePhase() {
		t.Error("guest exports no handle_response")
	}
	if err := inst.HandleResponse(testCtx, ex, false); err != nil {
		t.Errorf("HandleResponse without export: %v", err)
	}
}

// An instance hands out again the label strings it made on an earlier request when the
// guest sets the same bytes, and makes new ones when they change: the labels are right
// either way, and the same labels on every request cost no allocation.
func TestSetLabelReusesStrings(t *testing.T) {
	f := load(t, newHost(t), Spec{Name: "hookwall", Module: testdata(t, "hookwall.wasm"), Pool: 1, MaxUses: 1 << 30})
	ex, _, _ := newExchange(t, getReq)
	labels := map[string]string{}
	ex.SetLabel = func(k, v string) { labels[k] = v }
	run := func(route string) {
		t.Helper()
		ex.Route = route
		clear(labels)
		inst, err := f.Acquire(testCtx)
		if err != nil {
			t.Fatal(err)
		}
		if next, err := inst.HandleRequest(testCtx, ex); err != nil || !next {
			t.Fatalf("next=%v err=%v", next, err)
		}
		inst.Release()
		if labels["route"] != route || labels["verdict"] != "ok" || len(labels) != 2 {
			t.Fatalf("route %s: labels %v", route, labels)
		}
	}
	for _, route := range []string{"github", "stripe", "stripe", "github", "", "github"} {
		run(route)
	}
	if allocs := testing.AllocsPerRun(200, func() { run("github") }); allocs != 0 {
		t.Errorf("the same labels again: %v allocations a request, want none", allocs)
	}
}

func TestLoadRejects(t *testing.T) {
	h := newHost(t)
	tiny := testdata(t, "tiny.wasm")
	cases := []struct {
		name string
		spec Spec
		want string
	}{
		{"no name", Spec{Module: tiny}, "no name"},
		{"no module", Spec{Name: "x"}, "empty module"},
		{"bad timeout", Spec{Name: "x", Module: tiny, Timeout: -5}, "negative"},
		{"bad pool", Spec{Name: "x", Module: tiny, Pool: -1}, "negative"},
		{"not wasm", Spec{Name: "x", Module: []byte("hello")}, "compile"},
		{"no handle_request", Spec{Name: "x", Module: refGuestOrSkip(t, "tck/tck.wasm", func(b []byte) []byte {
			return bytes.Replace(b, []byte("handle_request"), []byte("handle_requesX"), 1)
		})}, "does not export handle_request"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := h.Load(testCtx, c.spec)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
}

func refGuestOrSkip(t *testing.T, rel string, edit func([]byte) []byte) []byte {
	t.Helper()
	return edit(bytes.Clone(refGuest(t, rel)))
}

func TestCloseLifecycle(t *testing.T) {
	h := newHost(t)
	f := load(t, h, Spec{Name: "tiny", Module: testdata(t, "tiny.wasm"), Pool: 2})
	inst, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(testCtx); err != nil {
		t.Errorf("second close: %v", err)
	}
	// The instance in use still finishes its request, then is closed.
	ex, _, _ := newExchange(t, getReq)
	if next, err := inst.HandleRequest(testCtx, ex); err != nil || !next {
		t.Errorf("in-flight call after Close: next=%v err=%v", next, err)
	}
	inst.Release()
	if st := f.Stats(); st.Live != 0 || st.Idle != 0 || st.InUse != 0 {
		t.Errorf("after close and release: %+v", st)
	}
	if _, err := f.Acquire(testCtx); !errors.Is(err, ErrClosed) {
		t.Errorf("acquire after close: %v", err)
	}
	if err := h.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Load(testCtx, Spec{Name: "tiny", Module: testdata(t, "tiny.wasm")}); !errors.Is(err, ErrClosed) {
		t.Errorf("load after host close: %v", err)
	}

	// Host closed first, under a filter with an instance in use: the call
	// fails cleanly, Release and Close still work.
	h2, err := NewHost(testCtx, "")
	if err != nil {
		t.Fatal(err)
	}
	f2, err := h2.Load(testCtx, Spec{Name: "tiny", Module: testdata(t, "tiny.wasm"), Pool: 1})
	if err != nil {
		t.Fatal(err)
	}
	inst, err = f2.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := h2.Close(testCtx); err != nil {
		t.Fatal(err)
	}
	if err := h2.Close(testCtx); err != nil {
		t.Errorf("second host close: %v", err)
	}
	ex, _, _ = newExchange(t, getReq)
	if _, err := inst.HandleRequest(testCtx, ex); err == nil {
		t.Error("call on a closed host succeeded")
	}
	inst.Release()
	if err := f2.Close(testCtx); err != nil {
		t.Errorf("filter close after host close: %v", err)
	}
}

func TestRecycleAfterMaxUses(t *testing.T) {
	// A recycled instance's refill runs in the background and may race the next call, which
	// then makes an instance above Pool; the reaper closes that one once it idles for
	// IdleTimeout, kept short here so that the pool is back to one instance promptly.
	f := load(t, newHost(t), Spec{Name: "unreachable", Module: testdata(t, "unreachable.wasm"), Pool: 1, MaxUses: 3, IdleTimeout: 20 * time.Millisecond})
	var counts []string
	for range 7 {
		next, ex, err := call(t, f, getReq)
		if err != nil || !next {
			t.Fatalf("next=%v err=%v", next, err)
		}
		counts = append(counts, string(ex.Req.Header.Peek("X-Count")))
	}
	// Guest globals restart with every new instance, and none serves more than 3 calls. The
	// first instance serves the first three; after that a call may race the refill and make
	// an instance of its own, so the counts interleave ("1231123"), but 7 calls of at most
	// 3 each need at least three instances, each starting at 1.
	got := strings.Join(counts, "")
	if !strings.HasPrefix(got, "123") || strings.Trim(got, "123") != "" || strings.Count(got, "1") < 3 {
		t.Errorf("per-instance counters %s, want 123 then counts of at most 3 from at least two new instances (1231231 without a race)", got)
	}
	testutil.WaitFor(t, func() bool { st := f.Stats(); return st.Idle == 1 && st.Live == 1 })
	// Every instance that served its third call was recycled: as many as the 3s counted.
	if st := f.Stats(); st.Recycled != uint64(strings.Count(got, "3")) || st.Discarded != 0 {
		t.Errorf("stats %+v after counters %s", st, got)
	}
}

func TestHashAndDiskCache(t *testing.T) {
	tiny := testdata(t, "tiny.wasm")
	a := Spec{Name: "tiny", Module: tiny}
	b := Spec{Name: "tiny", Module: tiny, Timeout: config.DefaultFilterTimeout, Memory: config.DefaultFilterMemory}
	if a.Hash() == "" || a.Hash() != b.Hash() {
		t.Errorf("defaults change the hash: %q vs %q", a.Hash(), b.Hash())
	}
	for _, c := range []Spec{
		{Name: "other", Module: tiny},
		{Name: "tiny", Module: tiny, Config: []byte("x")},
		{Name: "tiny", Module: tiny, Timeout: NoDeadline},
		{Name: "tiny", Module: tiny, Memory: 1 << 20},
		{Name: "tiny", Module: tiny, Pool: 99},
		{Name: "tiny", Module: tiny, MaxUses: 5},
		{Name: "tiny", Module: testdata(t, "loop.wasm")},
	} {
		if c.Hash() == a.Hash() {
			t.Errorf("%+v hashes like the default spec", c)
		}
	}

	dir := t.TempDir()
	for i := range 2 {
		h, err := NewHost(testCtx, dir)
		if err != nil {
			t.Fatal(err)
		}
		f, err := h.Load(testCtx, a)
		if err != nil {
			t.Fatal(err)
		}
		if f.Hash() != a.Hash() {
			t.Errorf("filter hash %q, spec hash %q", f.Hash(), a.Hash())
		}
		if next, _, err := call(t, f, getReq); err != nil || !next {
			t.Errorf("run %d: next=%v err=%v", i, next, err)
		}
		_ = h.Close(testCtx)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) == 0 {
		t.Error("compilation cache directory is empty")
	}
}

func TestNoDeadline(t *testing.T) {
	h := newHost(t)
	f := load(t, h, Spec{Name: "tiny", Module: testdata(t, "tiny.wasm"), Timeout: NoDeadline, Pool: 1})
	if next, _, err := call(t, f, getReq); err != nil || !next {
		t.Fatalf("next=%v err=%v", next, err)
	}
	// Trusted filters still trap normally.
	g := load(t, h, Spec{Name: "unreachable", Module: testdata(t, "unreachable.wasm"), Timeout: NoDeadline, Pool: 1})
	_, _, err := call(t, g, "GET / HTTP/1.1\r\nHost: x\r\nX-Trap: 1\r\n\r\n")
	wantKind(t, err, KindTrap)
}

// TestResponsePhaseNeedsBufferFeature checks the ABI's phase rules: after
// next, the response may only be changed with buffer_response, here
// enabled from handle_request for the current request.
func TestResponsePhaseNeedsBufferFeature(t *testing.T) {
	h := newHost(t)
	run := func(f *Filter) (string, error) {
		ex, _, resp := newExchange(t, getReq)
		err := answered(t, f, ex, resp)
		return string(resp.Body()), err
	}
	with := load(t, h, Spec{Name: "with", Module: testdata(t, "respbody.wasm"), Config: []byte{1}, Pool: 1})
	if body, err := run(with); err != nil || body != "replaced!" {
		t.Errorf("with buffer_response: body %q err %v", body, err)
	}
	without := load(t, h, Spec{Name: "without", Module: testdata(t, "respbody.wasm"), Config: []byte{0}, Pool: 1})
	body, err := run(without)
	wantKind(t, err, KindABI)
	if body != "from upstream" {
		t.Errorf("trapped guest changed the body to %q", body)
	}
}

// TestFeaturesEnabledAfterNextAreNotGranted: http-wasm takes enable_features only before
// handle_request returns. A guest that enables buffer_response in handle_response gets back
// the features it had (none), and its rewrite of the upstream's answer traps, leaving the
// answer as it came.
func TestFeaturesEnabledAfterNextAreNotGranted(t *testing.T) {
	f := load(t, newHost(t), Spec{Name: "late", Pool: 1, Module: wat(t, `(module
  (import "http_handler" "enable_features" (func $enable (param i32) (result i32)))
  (import "http_handler" "write_body" (func $write_body (param i32 i32 i32)))
  (import "http_handler" "set_status_code" (func $set_status (param i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "rewritten")
  (func (export "handle_request") (result i64) (i64.const 1))
  (func (export "handle_response") (param i32 i32)
    (if (i32.ne (call $enable (i32.const 2)) (i32.const 0)) (then (unreachable)))
    (call $set_status (i32.const 299))
    (call $write_body (i32.const 1) (i32.const 0) (i32.const 9))))`)})
	ex, _, resp := newExchange(t, getReq)
	fe := wantKind(t, answered(t, f, ex, resp), KindABI)
	if !strings.Contains(fe.Error(), "set_status_code") {
		t.Errorf("error %q, want set_status_code refused without the buffer feature", fe)
	}
	if resp.StatusCode() != 200 || string(resp.Body()) != "from upstream" {
		t.Errorf("the upstream's answer became %d %q", resp.StatusCode(), resp.Body())
	}
}

// TestSetLabelAfterNextTraps: labels are for the policy, which has decided by the time
// handle_response runs; a label set there traps the guest and reaches no one.
func TestSetLabelAfterNextTraps(t *testing.T) {
	f := load(t, newHost(t), Spec{Name: "late-label", Pool: 1, Module: wat(t, `(module
  (import "hookwall" "set_label" (func $set_label (param i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "latex")
  (func (export "handle_request") (result i64)
    (call $set_label (i32.const 0) (i32.const 4) (i32.const 4) (i32.const 1))
    (i64.const 1))
  (func (export "handle_response") (param i32 i32)
    (call $set_label (i32.const 0) (i32.const 4) (i32.const 4) (i32.const 1))))`)})
	ex, _, resp := newExchange(t, getReq)
	var got []string
	ex.SetLabel = func(k, v string) { got = append(got, k+"="+v) }
	fe := wantKind(t, answered(t, f, ex, resp), KindABI)
	if !strings.Contains(fe.Error(), "set_label") || !strings.Contains(fe.Error(), "after next") {
		t.Errorf("error %q, want set_label refused after next", fe)
	}
	if len(got) != 1 || got[0] != "late=x" {
		t.Errorf("labels %v, want the request phase's late=x alone", got)
	}
}

// flood runs the request phase of a guest (without a deadline) that adds headers in a loop,
// wants it trapped, and returns how many headers named name it added.
func flood(t *testing.T, module, name string) int {
	t.Helper()
	f := load(t, newHost(t), Spec{Name: "flood", Module: testdata(t, module), Pool: 1, Timeout: NoDeadline})
	ex, req, _ := newExchange(t, "POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
	inst, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = inst.HandleRequest(testCtx, ex)
	inst.Release()
	wantKind(t, err, KindABI)
	return len(req.Header.PeekAll(name))
}

// TestGuestCannotFloodHostMemory: header bytes a guest adds live in host memory, outside the
// guest's own cap, so the host bounds them per request and traps the guest past the bound.
func TestGuestCannotFloodHostMemory(t *testing.T) {
	if n := flood(t, "flood.wasm", "X-Flood"); n > maxAddedHeaderBytes/1024+1 {
		t.Fatalf("%d header lines were added; the host must stop the guest at 1 MiB", n)
	}
}

// TestGuestCannotAnnounceATrailer: trailers are not supported, and naming one through the
// header kind (set_header_value(response, "Trailer", …)) traps as the trailer kinds do:
// fasthttp would otherwise send the named field in a chunked answer's trailer section.
func TestGuestCannotAnnounceATrailer(t *testing.T) {
	f := load(t, newHost(t), Spec{Name: "trailer", Module: testdata(t, "resptrailer.wasm"), Pool: 1})
	_, ex, err := call(t, f, getReq)
	wantKind(t, err, KindABI)
	if tr := ex.Resp.Header.Peek("Trailer"); len(tr) > 0 {
		t.Errorf("the response announces a trailer: %q", tr)
	}
}

// TestGuestCannotFloodHostMemoryWithTinyHeaders: headers of one byte are counted with what
// the host keeps for each, not by their bytes alone: a million of them held some 70 MiB of host
// memory within a budget of 1 MiB of bytes.
func TestGuestCannotFloodHostMemoryWithTinyHeaders(t *testing.T) {
	if n := flood(t, "tinyflood.wasm", "F"); n == 0 || n > maxAddedHeaderBytes/addedHeaderOverhead {
		t.Fatalf("%d one-byte headers were added; want some, and at most %d", n, maxAddedHeaderBytes/addedHeaderOverhead)
	}
}

// TestHeaderNamesAreListedInLinearTime: get_header_names drops repeated names (in any case)
// with a set once there are many, not by scanning the list for each: one host call, which no
// deadline interrupts, over the thousands of headers a guest may add cost their square (a
// 200 ms filter deadline overrun to over 3 s with 40,000).
func TestHeaderNamesAreListedInLinearTime(t *testing.T) {
	names := func(n, repeat int) iter.Seq2[[]byte, []byte] {
		return func(yield func([]byte, []byte) bool) {
			for r := range repeat {
				for i := range n {
					name := []byte("X-N" + strconv.Itoa(i))
					if r%2 == 1 {
						name = bytes.ToUpper(name)
					}
					if !yield(name, nil) {
						return
					}
				}
			}
		}
	}
	for _, n := range []int{1, scanNames, scanNames + 1, 1000} {
		list, count := appendNames(nil, names(n, 3))
		if int(count) != n || bytes.Count(list, []byte{0}) != n || !bytes.HasPrefix(list, []byte("x-n0\x00")) {
			t.Errorf("%d names sent three times, in two cases: listed %d (%q…)", n, count, list[:min(len(list), 40)])
		}
	}
	// 200,000 distinct names: linear, a few tens of milliseconds; scanned, some minutes.
	start := time.Now()
	if _, count := appendNames(nil, names(200_000, 1)); count != 200_000 {
		t.Fatalf("listed %d of 200000 names", count)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("listing 200000 header names took %v", took)
	}
}

// A deadline that fires just as the guest returns leaves the call's answer standing but the
// instance's context done for good: the instance is discarded, not reused, or its next call
// would fail as a timeout that was not its own.
func TestLateDeadlineDiscardsTheInstance(t *testing.T) {
	h := newHost(t)
	// A guest that makes no host call: the deadline fires after its last one (here, before
	// the call starts), so nothing checks it until the call has returned.
	noop := wat(t, `(module (memory (export "memory") 1 1) (func (export "handle_request") (result i64) (i64.const 1)))`)
	f := load(t, h, Spec{Name: "noop", Module: noop, Pool: 1})
	ex, _, _ := newExchange(t, getReq)
	inst, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	// The timer's fire as the guest returns: wazero has stopped watching Done, and no host
	// function is left to check it, so only the context's state records it.
	inst.cctx.mu.Lock()
	inst.cctx.expired.Store(true)
	inst.cctx.mu.Unlock()
	if _, err := inst.HandleRequest(testCtx, ex); err != nil {
		t.Fatalf("the guest's answer, given before the deadline fired, is lost: %v", err)
	}
	inst.Release()
	next, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Release()
	if next == inst {
		t.Fatal("the instance whose deadline fired was reused")
	}
	if _, err := next.HandleRequest(testCtx, ex); err != nil {
		t.Fatalf("the fresh instance: %v", err)
	}
}

func TestDisarmReportsAFiredDeadline(t *testing.T) {
	h := newHost(t)
	tiny := load(t, h, Spec{Name: "tiny", Module: testdata(t, "tiny.wasm"), Pool: 1})
	inst, err := tiny.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Release()
	c := &inst.cctx
	c.arm(time.Now().Add(time.Hour), time.Hour)
	if c.disarm() {
		t.Fatal("disarm reports a fire an hour early")
	}
	c.arm(time.Now(), 0)
	testutil.WaitFor(t, func() bool { return c.Err() != nil })
	if !c.disarm() {
		t.Fatal("disarm does not report the deadline that fired")
	}
	inst.broken = true // its Done is closed: not for the pool
}

// TestEndedContextLeavesTheInstanceUsable: a call made with a context that had already ended
// fails as a timeout without running the guest, and the instance, which did nothing wrong,
// goes back to the pool: the next request is served by it, and nothing was discarded.
func TestEndedContextLeavesTheInstanceUsable(t *testing.T) {
	h := newHost(t)
	f := load(t, h, Spec{Name: "tiny", Module: testdata(t, "tiny.wasm"), Pool: 1})
	before := f.Stats()

	ctx, cancel := context.WithCancel(testCtx)
	cancel()
	ex, _, _ := newExchange(t, getReq)
	inst, err := f.Acquire(testCtx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = inst.HandleRequest(ctx, ex)
	wantKind(t, err, KindTimeout)
	inst.Release()

	if next, _, err := call(t, f, getReq); err != nil || !next {
		t.Fatalf("the next call: next %v, err %v", next, err)
	}
	after := f.Stats()
	if after.Discarded != before.Discarded || after.Created != before.Created {
		t.Errorf("discarded %d → %d, created %d → %d: the instance was closed and replaced, want it pooled again",
			before.Discarded, after.Discarded, before.Created, after.Created)
	}
	if after.Calls != before.Calls+1 {
		t.Errorf("guest calls %d → %d, want one: the ended context's call must not run the guest", before.Calls, after.Calls)
	}
}

// TestGuestExitWithDeadlineCodeIsNotATimeout: wazero closes a module that overran its
// deadline with exit code 0xefffffff, and a guest can exit with that code itself. Within its
// deadline that exit is the guest's own failure, a trap, whether in handle_request or in its
// start function: a timeout is reported only when the deadline passed.
func TestGuestExitWithDeadlineCodeIsNotATimeout(t *testing.T) {
	h := newHost(t)
	f := load(t, h, Spec{Name: "exit-call", Pool: 1, Module: wat(t, `(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1 1)
  (func (export "handle_request") (result i64)
    (call $exit (i32.const 0xefffffff))
    (i64.const 1)))`)})
	_, _, err := call(t, f, getReq)
	wantKind(t, err, KindTrap)
	if st := f.Stats(); st.Errors.Timeout != 0 || st.Errors.Trap != 1 {
		t.Errorf("counted %+v, want one trap and no timeout", st.Errors)
	}

	_, err = h.Load(testCtx, Spec{Name: "exit-start", Pool: 1, Module: wat(t, `(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1 1)
  (func (export "_initialize") (call $exit (i32.const 0xefffffff)))
  (func (export "handle_request") (result i64) (i64.const 1)))`)})
	wantKind(t, err, KindTrap)
}
