package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/filter"
	"github.com/hookwall/hookwall/engine/gateway"
)

const filterTestUsage = `usage: hookwall filter test FILE.wasm --request FILE.http [--config STRING | --config-file FILE]
                                            [--response FILE.http] [--route NAME] [--expect next|deny]

Runs one filter alone, in the gateway's sandbox, on a raw HTTP/1.1 request and prints what it
did as JSON: its outcome (next: the request goes on; deny: the filter answered), the labels it
set for the policy, what it changed in the request that would be forwarded (method, URI,
headers, body), the response it wrote when it denied, and, when the request goes on and the
filter has a response phase, what it changed in the upstream's answer (--response, default
"200 OK" with a short text body). Any language's filter: Go, C, WAT, AssemblyScript.

--expect makes it a test: exit 1 when the outcome differs.

Exit status: 0 when the filter ran (and met --expect); 1 when it could not load, trapped,
timed out or missed --expect; 2 on bad usage.

flags:
`

// filterTestOutput is what filter test prints.
type filterTestOutput struct {
	Filter  string            `json:"filter"`
	Outcome string            `json:"outcome"` // next, deny or error
	Error   string            `json:"error,omitempty"`
	Labels  map[string]string `json:"labels"`
	// Forwarded lists what the filter changed in the request the upstream would get.
	Forwarded *filter.Changes `json:"forwarded,omitempty"`
	// Response is the answer the filter wrote when it denied.
	Response *message `json:"response,omitempty"`
	// ResponsePhase is what the filter changed in the upstream's answer.
	ResponsePhase *responsePhase `json:"response_phase,omitempty"`
	Micros        int64          `json:"us"`
}

type responsePhase struct {
	Outcome string          `json:"outcome"` // ran, error
	Error   string          `json:"error,omitempty"`
	Changes *filter.Changes `json:"changes"`
}

// message is a response as the client would get it.
type message struct {
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

func cmdFilterTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("filter test", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { fmt.Fprint(stderr, filterTestUsage); fset.PrintDefaults() }
	reqFile := fset.String("request", "", "the request: a raw HTTP/1.1 request (\"-\": stdin)")
	respFile := fset.String("response", "", "the upstream's answer for the response phase: a raw HTTP/1.1 response")
	config := fset.String("config", "", "the filter's config string ([[filter]] config)")
	configFile := fset.String("config-file", "", "read the filter's config string from this file")
	route := fset.String("route", "test", "the route name the filter sees (hookwall get_route)")
	timeout := fset.Duration("timeout", time.Second, "CPU deadline of each guest call")
	expect := fset.String("expect", "", "next or deny: exit 1 when the filter's outcome differs")
	rest, err := parseInterspersed(fset, args)
	if err != nil {
		return 2
	}
	if len(rest) != 1 || *reqFile == "" || (*expect != "" && *expect != "next" && *expect != "deny") || (*config != "" && *configFile != "") {
		fset.Usage()
		return 2
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "hookwall filter test: "+format+"\n", a...)
		return 1
	}
	wasm, err := os.ReadFile(rest[0])
	if err != nil {
		return fail("%v", err)
	}
	cfg := []byte(*config)
	if *configFile != "" {
		if cfg, err = os.ReadFile(*configFile); err != nil {
			return fail("%v", err)
		}
	}
	raw, err := readRequestFile(*reqFile)
	if err != nil {
		return fail("%v", err)
	}
	capture, err := gateway.ParseCapture(raw)
	if err != nil {
		return fail("%s: %v", *reqFile, err)
	}
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	if err := capture.Into(req, 64<<10, 16<<20); err != nil {
		return fail("%s: %v", *reqFile, err)
	}
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseResponse(resp)

	host, err := filter.NewHost(ctx, "")
	if err != nil {
		return fail("%v", err)
	}
	defer host.Close(context.WithoutCancel(ctx))
	name := strings.TrimSuffix(filepath.Base(rest[0]), ".wasm")
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f, err := host.Load(ctx, filter.Spec{Name: name, Module: wasm, Config: cfg, Timeout: *timeout, Pool: 1, Logger: logger})
	if err != nil {
		return fail("%v", err)
	}
	defer f.Close(context.WithoutCancel(ctx))
	inst, err := f.Acquire(ctx)
	if err != nil {
		return fail("%v", err)
	}
	defer inst.Release()

	out := filterTestOutput{Filter: name, Labels: map[string]string{}}
	ex := &filter.Exchange{Req: req, Resp: resp, Route: *route, RemoteAddr: "127.0.0.1:40000", Scheme: "http",
		SetLabel: func(k, v string) { out.Labels[k] = v }}
	before := filter.RequestMessage(req)
	start := time.Now()
	next, err := inst.HandleRequest(ctx, ex)
	out.Micros = time.Since(start).Microseconds()
	switch {
	case err != nil:
		out.Outcome, out.Error = "error", err.Error()
	case next:
		out.Outcome = "next"
		out.Forwarded = filter.Diff(before, filter.RequestMessage(req))
	default:
		out.Outcome = "deny"
		m := filter.ResponseMessage(resp)
		out.Response = &message{Status: m.Status, Headers: m.Headers, Body: m.Body}
	}
	if next && f.HasResponsePhase() {
		if err := upstreamAnswer(resp, *respFile); err != nil {
			return fail("%v", err)
		}
		before := filter.ResponseMessage(resp)
		ph := &responsePhase{Outcome: "ran"}
		if err := inst.HandleResponse(ctx, ex, false); err != nil {
			ph.Outcome, ph.Error = "error", err.Error()
		}
		ph.Changes = filter.Diff(before, filter.ResponseMessage(resp))
		out.ResponsePhase = ph
	}
	if code := printJSON(stdout, stderr, &out); code != 0 {
		return code
	}
	switch {
	case out.Outcome == "error" || (out.ResponsePhase != nil && out.ResponsePhase.Outcome == "error"):
		return 1
	case *expect != "" && out.Outcome != *expect:
		fmt.Fprintf(stderr, "hookwall filter test: outcome %s, expected %s\n", out.Outcome, *expect)
		return 1
	}
	return 0
}

// upstreamAnswer fills resp with the upstream's answer for the response phase.
func upstreamAnswer(resp *fasthttp.Response, file string) error {
	resp.Reset()
	if file == "" {
		resp.SetStatusCode(fasthttp.StatusOK)
		resp.Header.SetContentType("text/plain; charset=utf-8")
		resp.SetBodyString("ok\n")
		return nil
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	// Hand-written files often end lines with \n alone: HTTP wants \r\n.
	if !bytes.Contains(raw, []byte("\r\n")) {
		head, body, _ := bytes.Cut(raw, []byte("\n\n"))
		raw = append(append(bytes.ReplaceAll(head, []byte("\n"), []byte("\r\n")), "\r\n\r\n"...), body...)
	}
	if err := resp.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if len(resp.Body()) == 0 && resp.Header.ContentLength() < 0 {
		return errors.New(file + ": the response has no Content-Length")
	}
	return nil
}

func printJSON(stdout, stderr io.Writer, v any) int {
	if err := jsonEncoder(stdout).Encode(v); err != nil {
		fmt.Fprintf(stderr, "hookwall: %v\n", err)
		return 1
	}
	return 0
}
