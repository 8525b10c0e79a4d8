package main

import (
	"bytes"
	"context"
	"io"
	"net"
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

// TestNodeBareForwardsAsReceived: the bare proxy, the benchmark's baseline, forwards a
// request's User-Agent as received, none when none was sent, as hookwall does: the baseline
// must not forward a header more or less than the gateway it is set beside.
func TestNodeBareForwardsAsReceived(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	agents := make(chan []string, 4)
	up := &fasthttp.Server{Handler: func(c *fasthttp.RequestCtx) {
		var got []string
		for _, v := range c.Request.Header.PeekAll(fasthttp.HeaderUserAgent) {
			got = append(got, string(v))
		}
		agents <- got
	}}
	go up.Serve(ln) //nolint:errcheck // ends with Shutdown
	defer up.Shutdown()
	bare := freeAddr(t)
	done := make(chan int, 1)
	go func() { done <- cmdNode(ctx, []string{"bare", bare, ln.Addr().String()}, io.Discard, io.Discard) }()
	defer func() { cancel(); <-done }()
	if err := waitTCP(ctx, bare, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	client := &fasthttp.HostClient{Addr: bare, NoDefaultUserAgentHeader: true}
	for _, ua := range []string{"", "GitHub-Hookshot/abc"} {
		var req fasthttp.Request
		var resp fasthttp.Response
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI("http://" + bare + "/reference")
		if ua != "" {
			req.Header.SetUserAgent(ua)
		}
		if err := client.DoTimeout(&req, &resp, 5*time.Second); err != nil || resp.StatusCode() != fasthttp.StatusOK {
			t.Fatalf("through the bare proxy: %v %d", err, resp.StatusCode())
		}
		got := <-agents
		if ua == "" && len(got) != 0 || ua != "" && (len(got) != 1 || got[0] != ua) {
			t.Errorf("sent User-Agent %q, the upstream got %q", ua, got)
		}
	}
}
