package main

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestNodeBareControlCountsAndProfiles runs the upstream and the control (the bare proxy with
// two sums a request) as the benchmark starts them, sends them requests, and reads what the
// audit and an engineer read from them: the control's count of sums, the upstream's count of
// requests served, a CPU profile and a runtime trace.
func TestNodeBareControlCountsAndProfiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	upstream, control := freeAddr(t), freeAddr(t)
	done := make(chan int, 2)
	go func() { done <- cmdNode(ctx, []string{"upstream", upstream}, io.Discard, io.Discard) }()
	go func() { done <- cmdNode(ctx, []string{"bare", control, upstream, "2"}, io.Discard, io.Discard) }()
	defer func() {
		cancel()
		for range 2 {
			<-done
		}
	}()
	for _, a := range []string{upstream, control} {
		if err := waitTCP(ctx, a, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	get := func(addr, path string, timeout time.Duration) []byte {
		t.Helper()
		var req fasthttp.Request
		var resp fasthttp.Response
		req.SetRequestURI("http://" + addr + path)
		if err := fasthttp.DoTimeout(&req, &resp, timeout); err != nil {
			t.Fatalf("GET %s%s: %v", addr, path, err)
		}
		if resp.StatusCode() != fasthttp.StatusOK {
			t.Fatalf("GET %s%s: %d %s", addr, path, resp.StatusCode(), resp.Body())
		}
		return append([]byte(nil), resp.Body()...)
	}
	for i := range 3 {
		var req fasthttp.Request
		var resp fasthttp.Response
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI("http://" + control + "/reference")
		req.SetBodyString("body " + strconv.Itoa(i))
		if err := fasthttp.DoTimeout(&req, &resp, 5*time.Second); err != nil || string(resp.Body()) != "ok" {
			t.Fatalf("request %d through the control: %v %q", i, err, resp.Body())
		}
	}
	// Read as the audit reads them.
	if got, err := upstreamHits(control); err != nil || got != 6 {
		t.Errorf("the control counts %d sums for 3 requests (%v), want 6", got, err)
	}
	if got, err := upstreamHits(upstream); err != nil || got != 3 {
		t.Errorf("the upstream counts %d requests (%v), want 3", got, err)
	}
	if p := get(control, "/__profile?seconds=1", 10*time.Second); !bytes.HasPrefix(p, []byte{0x1f, 0x8b}) {
		t.Errorf("/__profile is not a gzipped profile: %.20q", p)
	}
	if tr := get(control, "/__trace?seconds=1", 10*time.Second); !bytes.HasPrefix(tr, []byte("go 1.")) {
		t.Errorf("/__trace is not a runtime trace: %.20q", tr)
	}
	if code := cmdNode(ctx, []string{"bare", freeAddr(t), upstream, "-1"}, io.Discard, io.Discard); code != 2 {
		t.Errorf("a negative HASHES exited %d, want 2", code)
	}
}
