package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/lineage"

	"github.com/hookwall/hookwall/engine/gateway"
)

const evalUsage = `usage: hookwall eval -c gateway.toml --route NAME --request FILE [--remote-ip IP] [--now TIME] [--explain[=MODE]] [--format pretty|json] [--input]

Runs the route's filters and policy on the request in FILE exactly as the gateway would,
without forwarding it, checking rate limits or duplicates, or logging it, and prints the
decision as JSON. FILE ("-" for stdin) is a raw HTTP/1.1 request (request line, headers, a
blank line, the body) or the output of curl --trace.

A recorded request's signature timestamp ages: --now sets the clock the signature checks use
(RFC 3339, e.g. 2026-11-28T23:04:21Z, or Unix seconds), so a request recorded yesterday
evaluates as it did when it arrived. --explain adds the policy's trace: by default as text after
the decision, as opa eval --explain prints it; with --format json inside the JSON document.

Exit status: 0 when the request was evaluated, whatever the decision; 1 when it could not be
(config, file, route); 2 on bad usage.

flags:
`

// explainMode is --explain: a bare flag means "full"; --explain=notes|fails|full|debug picks
// the trace filter (as opa eval --explain).
type explainMode struct{ mode string }

func (e *explainMode) String() string   { return e.mode }
func (e *explainMode) IsBoolFlag() bool { return true }
func (e *explainMode) Set(s string) error {
	switch s {
	case "true":
		e.mode = "full"
	case "false":
		e.mode = ""
	case "full", "notes", "fails", "debug":
		e.mode = s
	default:
		return fmt.Errorf("want full, notes, fails or debug, not %q", s)
	}
	return nil
}

// evalOutput is what eval prints.
type evalOutput struct {
	*gateway.Evaluation
	Request struct {
		Method   string `json:"method"`
		Path     string `json:"path"`
		RemoteIP string `json:"remote_ip"`
		Bytes    int    `json:"body_bytes"`
	} `json:"request"`
	Input   json.RawMessage `json:"input,omitempty"`
	Explain []string        `json:"explain,omitempty"`
}

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("eval", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { fmt.Fprint(stderr, evalUsage); fset.PrintDefaults() }
	cfgPath := configFlags(fset)
	route := fset.String("route", "", "the route to evaluate (default: route the request as the gateway would)")
	reqFile := fset.String("request", "", "the request: a raw HTTP/1.1 request or curl --trace output (\"-\": stdin)")
	remoteIP := fset.String("remote-ip", "127.0.0.1", "the client address the request came from")
	showInput := fset.Bool("input", false, "also print the Rego input document the policy saw")
	nowFlag := fset.String("now", "", "the clock of signature timestamp checks: RFC 3339 or Unix seconds (default: now)")
	format := fset.String("format", "pretty", "pretty: the decision as JSON, then the trace as text; json: one JSON document")
	var explain explainMode
	fset.Var(&explain, "explain", "add the policy's evaluation trace: full (the default), notes, fails or debug")
	rest, err := parseInterspersed(fset, args)
	if err != nil {
		return 2
	}
	if *reqFile == "" && len(rest) == 1 {
		*reqFile, rest = rest[0], nil
	}
	if *reqFile == "" || len(rest) > 0 {
		fset.Usage()
		return 2
	}
	if *format != "pretty" && *format != "json" {
		fmt.Fprintf(stderr, "hookwall eval: --format %q: want pretty or json\n", *format)
		return 2
	}
	var now func() time.Time
	if *nowFlag != "" {
		t, err := parseNow(*nowFlag)
		if err != nil {
			fmt.Fprintf(stderr, "hookwall eval: --now: %v\n", err)
			return 2
		}
		now = func() time.Time { return t }
	}
	ip := net.ParseIP(*remoteIP)
	if ip == nil {
		fmt.Fprintf(stderr, "hookwall eval: --remote-ip %q is not an IP address\n", *remoteIP)
		return 2
	}

	raw, err := readRequestFile(*reqFile)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall eval: %v\n", err)
		return 1
	}
	capture, err := gateway.ParseCapture(raw)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall eval: %s: %v\n", *reqFile, err)
		return 1
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	checked, err := gateway.Check(ctx, *cfgPath, gateway.Options{Logger: logger, Now: now})
	if err != nil {
		fmt.Fprintf(stderr, "hookwall eval: %v\n", err)
		return 1
	}
	defer checked.Close()

	out := evalOutput{}
	out.Request.Method, out.Request.Path, out.Request.RemoteIP, out.Request.Bytes = capture.Method(), capture.Target(), ip.String(), len(capture.Body())
	var tracer *topdown.BufferTracer
	dry := gateway.DryRun{Route: *route, RemoteIP: ip}
	if explain.mode != "" {
		tracer = topdown.NewBufferTracer()
		dry.Tracer = tracer
	}
	ev, err := checked.Evaluate(capture, dry)
	if err != nil {
		fmt.Fprintf(stderr, "hookwall eval: %v\n", err)
		return 1
	}
	out.Evaluation = ev
	if *showInput && ev.Input != nil {
		v, err := ast.JSON(ev.Input)
		if err == nil {
			out.Input, err = json.Marshal(v)
		}
		if err != nil {
			fmt.Fprintf(stderr, "hookwall eval: input: %v\n", err)
			return 1
		}
	}
	if tracer == nil {
		return printEval(stdout, stderr, &out)
	}
	lines := explainLines(*tracer, explain.mode)
	if *format == "json" {
		out.Explain = lines
		return printEval(stdout, stderr, &out)
	}
	if code := printEval(stdout, stderr, &out); code != 0 {
		return code
	}
	fmt.Fprintf(stdout, "\nexplain (%s):\n", explain.mode)
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return 0
}

// parseNow reads --now: an RFC 3339 time or Unix seconds.
func parseNow(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-28T23:04:21Z) nor Unix seconds", s)
}

func printEval(stdout, stderr io.Writer, out *evalOutput) int {
	enc := jsonEncoder(stdout)
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(stderr, "hookwall eval: %v\n", err)
		return 1
	}
	return 0
}

// explainLines renders the trace as opa eval --explain does, one line per element.
func explainLines(trace topdown.BufferTracer, mode string) []string {
	events := []*topdown.Event(trace)
	switch mode {
	case "notes":
		events = lineage.Notes(events)
	case "fails":
		events = lineage.Fails(events)
	case "debug":
		events = lineage.Debug(events)
	default:
		events = lineage.Full(events)
	}
	// Policy files print relative to the working directory, as opa does; the events are
	// copied, the compiled modules' locations are shared.
	wd, _ := os.Getwd()
	for i, e := range events {
		if e.Location == nil || wd == "" {
			continue
		}
		if rel, err := filepath.Rel(wd, e.Location.File); err == nil && !strings.HasPrefix(rel, "..") {
			ec, loc := *e, *e.Location
			loc.File, ec.Location = rel, &loc
			events[i] = &ec
		}
	}
	var b bytes.Buffer
	topdown.PrettyTraceWithOpts(&b, events, topdown.PrettyTraceOptions{Locations: true, ExprVariables: mode != "notes"})
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	return lines
}

func readRequestFile(name string) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(io.LimitReader(os.Stdin, gateway.MaxCaptureSize+1))
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, gateway.MaxCaptureSize+1))
}

func jsonEncoder(w io.Writer) *json.Encoder {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc
}
