// Package sdktest runs a filter written with package sdk natively, without
// wasm, so it can be unit-tested with plain `go test`.
//
// The filter under test is the one its package registers from init (sdk.Handle,
// sdk.HandleResponse, sdk.Configure), exactly as in the wasm build; tests of a
// filter's package main therefore see it registered.
//
//	f, err := sdktest.New(`{"allow":["push"]}`)
//	res, err := f.Do(sdktest.NewRequest("POST", "/hooks/gh", body).
//		WithHeader("X-GitHub-Event", "push"))
//	// res.Next, res.Response.Status, res.Labels, res.Forwarded.Body …
//
// The in-memory host follows the ABI semantics the real host has: body
// streams read once per phase, first body write of a phase replaces and later
// ones append, case-insensitive header names, no trailers, default status 200,
// and the host's limits: labels, 1 MiB of headers set or added to one request,
// and a written body within the default memory cap (32 MiB).
// The request is shown as the gateway reads it from the wire: repeated Cookie
// lines are one value joined with "; ", and a body (or a method other than GET
// and HEAD) comes with the Content-Length received. Where it still differs
// from the gateway (Host, the order of header names, the request the response
// phase sees) is listed in the SDK's README.
//
// # Notes
//
// A wasm instance has one copy of the guest's globals; in a test binary there
// is one too. Filter serialises every call over it (concurrent tests are safe
// but run one at a time), and re-runs the Configure functions whenever a
// different Filter than the last one is used, so several configurations can
// be tested in one binary.
package sdktest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hookwall/hookwall/sdk"
	"github.com/hookwall/hookwall/sdk/internal/harness"
)

// Filter is the registered filter with one configuration, as one wasm
// instance would run it. Safe for concurrent use.
type Filter struct {
	config []byte
}

// last is the Filter whose config the guest globals hold; guarded by the
// harness session lock.
var last *Filter

// New configures the registered filter with config (what get_config returns)
// and returns it, or the error the filter's Configure function returned —
// the error a gateway would report when loading the filter.
func New(config string) (*Filter, error) {
	f := &Filter{config: []byte(config)}
	s := harness.Lock()
	defer s.Unlock()
	if err := f.configure(s); err != nil {
		return nil, err
	}
	return f, nil
}

func (f *Filter) configure(s *harness.Session) error {
	if last == f {
		return nil
	}
	last = nil
	if err := s.Configure(f.config); err != nil {
		return fmt.Errorf("sdktest: config rejected: %w", err)
	}
	last = f
	return nil
}

// Request is a request to run through the filter.
type Request struct {
	Method     string // default "POST"
	URI        string // path and query; default "/"
	Proto      string // default "HTTP/1.1"
	Header     Header
	Body       []byte
	SourceAddr string // default "127.0.0.1:50000"
	Route      string // what sdk.Route returns; default "test"
}

// NewRequest returns a request with the given method, URI and body.
func NewRequest(method, uri string, body []byte) *Request {
	return &Request{Method: method, URI: uri, Body: body}
}

// WithHeader adds a header value and returns r, for chaining.
func (r *Request) WithHeader(name, value string) *Request {
	r.Header.Add(name, value)
	return r
}

// Response is a response: the one the filter wrote, or an upstream's.
type Response struct {
	Status int // default 200
	Header Header
	Body   []byte
}

// LogEntry is one sdk.Log call.
type LogEntry struct {
	Level sdk.LogLevel
	Msg   string
}

// Result is what one run produced.
type Result struct {
	// Next is what the request handler returned: true forwards.
	Next bool
	// Forwarded is the request after the filter's changes: what the gateway
	// would forward when Next is true.
	Forwarded *Request
	// Response is what the client gets: the filter's response when Next is
	// false; after RoundTrip with Next true, the upstream's response after
	// the response handler's changes; otherwise the response the filter
	// wrote so far (status 200, usually nothing else).
	Response Response
	// Labels are the labels set with sdk.SetLabel.
	Labels map[string]string
	// Logs are the messages logged, in order.
	Logs []LogEntry
	// Features are the features the guest enabled.
	Features sdk.Features
}

// ErrNoUpstream is returned by RoundTrip when it is given no upstream
// response.
var ErrNoUpstream = errors.New("sdktest: no upstream response")

// Do runs the request phase only. A panic in the handler is returned as an
// error, as a trap would end the wasm call.
func (f *Filter) Do(req *Request) (*Result, error) {
	s := harness.Lock()
	defer s.Unlock()
	if err := f.configure(s); err != nil {
		return nil, err
	}
	x := newExchange(req)
	next, err := s.HandleRequest(x)
	if err != nil {
		return nil, err
	}
	return result(x, next), nil
}

// RoundTrip runs the request phase and, when the filter forwards, hands it
// upstream as the upstream's response and runs the response phase, as the
// gateway does after proxying. isError is passed to the response handler.
func (f *Filter) RoundTrip(req *Request, upstream *Response, isError bool) (*Result, error) {
	if upstream == nil {
		return nil, ErrNoUpstream
	}
	s := harness.Lock()
	defer s.Unlock()
	if err := f.configure(s); err != nil {
		return nil, err
	}
	x := newExchange(req)
	next, err := s.HandleRequest(x)
	if err != nil {
		return nil, err
	}
	if next {
		// The upstream's response is merged into what the request phase wrote, as the gateway
		// merges it: the upstream's status; its headers added to those the guest set, but
		// Content-Type and Server, which replace the guest's, and Content-Length and the
		// hop-by-hop headers, which the gateway does not pass on; its body after the guest's.
		x.Status = upstream.Status
		if x.Status == 0 {
			x.Status = 200
		}
		for _, fl := range upstream.Header.f {
			switch {
			case strings.EqualFold(fl.Name, "Content-Length"), hopByHop(upstream.Header.f, fl.Name):
			case strings.EqualFold(fl.Name, "Content-Type"), strings.EqualFold(fl.Name, "Server"):
				x.RespHeader = x.RespHeader.Set(fl.Name, fl.Value)
			default:
				x.RespHeader = x.RespHeader.Add(fl.Name, fl.Value)
			}
		}
		x.RespBody = harness.Body{Data: append(slices.Clone(x.RespBody.Data), upstream.Body...)}
		if err := s.HandleResponse(x, isError); err != nil {
			return nil, err
		}
	}
	return result(x, next), nil
}

// hopHeaders are the connection-level headers the gateway never passes on from an
// upstream's answer (RFC 9110 section 7.6.1), besides those its Connection header names.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// hopByHop reports whether name is a hop-by-hop header of an answer with headers f.
func hopByHop(f harness.Fields, name string) bool {
	for _, h := range hopHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	for _, v := range f.Values("Connection") {
		for opt := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(opt), name) {
				return true
			}
		}
	}
	return false
}

func newExchange(r *Request) *harness.Exchange {
	x := &harness.Exchange{
		Method:     r.Method,
		URI:        r.URI,
		Proto:      r.Proto,
		ReqHeader:  r.Header.f.Clone(),
		ReqBody:    harness.Body{Data: slices.Clone(r.Body)},
		SourceAddr: r.SourceAddr,
		Route:      r.Route,
		Status:     200,
	}
	if x.Method == "" {
		x.Method = "POST"
	}
	if x.URI == "" {
		x.URI = "/"
	}
	if x.Proto == "" {
		x.Proto = "HTTP/1.1"
	}
	if x.SourceAddr == "" {
		x.SourceAddr = "127.0.0.1:50000"
	}
	if x.Route == "" {
		x.Route = "test"
	}
	// The request as the gateway reads it from the wire: the cookies in one Cookie value,
	// and a Content-Length whenever the request has a body or its method may have one
	// (the gateway's views show the one received: a filter that rewrites the body does not
	// change it, and the upstream gets the length of what is forwarded).
	x.ReqHeader = x.ReqHeader.MergeCookies()
	if _, ok := x.ReqHeader.Get("Content-Length"); !ok {
		_, chunked := x.ReqHeader.Get("Transfer-Encoding")
		bodyless := len(r.Body) == 0 && (strings.EqualFold(x.Method, "GET") || strings.EqualFold(x.Method, "HEAD"))
		if !chunked && !bodyless {
			x.ReqHeader = x.ReqHeader.Add("Content-Length", strconv.Itoa(len(r.Body)))
		}
	}
	return x
}

func result(x *harness.Exchange, next bool) *Result {
	res := &Result{
		Next: next,
		Forwarded: &Request{
			Method:     x.Method,
			URI:        x.URI,
			Proto:      x.Proto,
			Header:     Header{f: x.ReqHeader.Clone()},
			Body:       slices.Clone(x.ReqBody.Data),
			SourceAddr: x.SourceAddr,
			Route:      x.Route,
		},
		Response: Response{
			Status: x.Status,
			Header: Header{f: x.RespHeader.Clone()},
			Body:   slices.Clone(x.RespBody.Data),
		},
		Labels:   maps.Clone(x.Labels),
		Features: sdk.Features(x.Features),
	}
	if _, ok := x.ReqHeader.Get("Content-Length"); ok {
		// What the upstream gets: the gateway frames the forwarded body itself.
		res.Forwarded.Header.Set("Content-Length", strconv.Itoa(len(x.ReqBody.Data)))
	}
	if res.Labels == nil {
		res.Labels = map[string]string{}
	}
	for _, l := range x.Logs {
		res.Logs = append(res.Logs, LogEntry{Level: sdk.LogLevel(l.Level), Msg: l.Msg})
	}
	return res
}

// Header is an ordered list of header fields with case-insensitive names.
// The zero value is empty and ready to use.
type Header struct {
	f harness.Fields
}

// Get returns the first value of name, or "".
func (h *Header) Get(name string) string {
	v, _ := h.f.Get(name)
	return v
}

// Has reports whether name has a value.
func (h *Header) Has(name string) bool {
	_, ok := h.f.Get(name)
	return ok
}

// Values returns every value of name, or nil.
func (h *Header) Values(name string) []string { return h.f.Values(name) }

// Names returns each name once, lower-cased, in first-seen order.
func (h *Header) Names() []string { return h.f.Names() }

// Set replaces every value of name with value.
func (h *Header) Set(name, value string) { h.f = h.f.Set(name, value) }

// Add appends a value of name.
func (h *Header) Add(name, value string) { h.f = h.f.Add(name, value) }

// Del removes name.
func (h *Header) Del(name string) { h.f = h.f.Del(name) }

// Len returns the number of fields.
func (h *Header) Len() int { return len(h.f) }
