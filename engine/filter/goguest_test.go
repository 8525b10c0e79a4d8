package filter

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildGoGuest builds testdata/goguest with the standard toolchain as a
// wasip1 reactor.
func buildGoGuest(t testing.TB) []byte {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Go wasip1 module")
	}
	out := filepath.Join(t.TempDir(), "goguest.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./testdata/goguest")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	wasm, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built goguest.wasm: %d KiB in %v", len(wasm)>>10, time.Since(start).Round(time.Millisecond))
	return wasm
}

// goHost returns a Host whose compilation cache outlives the test process,
// so compiling the 2 MiB Go guest is paid once per machine, not per run.
func goHost(t testing.TB) *Host {
	t.Helper()
	h, err := NewHost(testCtx, filepath.Join(os.TempDir(), "hookwall-filter-test-cache"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close(testCtx) })
	return h
}

// TestStandardGoGuest runs a guest built with the standard Go toolchain
// (-buildmode=c-shared, //go:wasmexport): _initialize must run once per
// instance, WASI must be there, and stderr must reach the log.
func TestStandardGoGuest(t *testing.T) {
	wasm := buildGoGuest(t)
	logger, logs := newLogger(slog.LevelDebug)
	h := goHost(t)
	start := time.Now()
	f, err := h.Load(testCtx, Spec{Name: "go", Module: wasm, Pool: 2, Logger: logger, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close(testCtx)
	t.Logf("compile + 2 instances: %v", time.Since(start).Round(time.Millisecond))
	if got := strings.Count(logs.String(), "goguest initialized"); got != 2 {
		t.Errorf("_initialize ran %d times for 2 instances; log:\n%s", got, logs)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"guest stderr\" filter=go") {
		t.Errorf("stderr not logged at warn:\n%s", logs)
	}

	cases := []struct {
		event  string
		next   bool
		status int
	}{
		{"push", true, 200},
		{"blocked", false, 403},
		{"", false, 400},
	}
	for _, c := range cases {
		raw := "POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
		if c.event != "" {
			raw += "X-Event: " + c.event + "\r\n"
		}
		ex, req, resp := newExchange(t, raw+"\r\n")
		labels := map[string]string{}
		ex.SetLabel = func(k, v string) { labels[k] = v }
		inst, err := f.Acquire(testCtx)
		if err != nil {
			t.Fatal(err)
		}
		next, err := inst.HandleRequest(testCtx, ex)
		if err == nil && next {
			err = inst.HandleResponse(testCtx, ex, false)
		}
		inst.Release()
		if err != nil || next != c.next || resp.StatusCode() != c.status {
			t.Errorf("event %q: next=%v status=%d err=%v", c.event, next, resp.StatusCode(), err)
		}
		if c.event != "" && labels["event"] != c.event {
			t.Errorf("event %q: labels %v", c.event, labels)
		}
		if c.next && len(req.Header.Peek("X-Go-Guest")) != 1 {
			t.Errorf("event %q: forwarded request not marked", c.event)
		}
	}
}

// BenchmarkRequestGoGuest is the filter-stage overhead of one request
// through a standard-Go guest with the deadline on.
func BenchmarkRequestGoGuest(b *testing.B) {
	wasm := buildGoGuest(b)
	h := goHost(b)
	f := load(b, h, Spec{Name: "go", Module: wasm, Timeout: time.Second, Pool: 1, MaxUses: 1 << 30})
	ex, _, _ := newExchange(b, "POST /hook HTTP/1.1\r\nHost: x\r\nX-Event: push\r\nContent-Length: 0\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		inst, err := f.Acquire(testCtx)
		if err != nil {
			b.Fatal(err)
		}
		if next, err := inst.HandleRequest(testCtx, ex); err != nil || !next {
			b.Fatal(next, err)
		}
		if err := inst.HandleResponse(testCtx, ex, false); err != nil {
			b.Fatal(err)
		}
		inst.Release()
	}
}

// BenchmarkInstantiateGoGuest is the cost of one standard-Go instance,
// _initialize included.
func BenchmarkInstantiateGoGuest(b *testing.B) {
	wasm := buildGoGuest(b)
	h := goHost(b)
	f := load(b, h, Spec{Name: "go", Module: wasm, Pool: 1})
	b.ReportAllocs()
	for b.Loop() {
		inst, err := f.newInstance(testCtx)
		if err != nil {
			b.Fatal(err)
		}
		_ = inst.close(testCtx)
	}
}
