// Package harness is the in-memory stand-in for the http-wasm host that the
// native (!wasip1) build of package sdk talks to, and that package sdktest
// drives. It mirrors the host semantics the SDK relies on: stateful body
// streams, "first write in a phase replaces, later writes append", and
// case-insensitive header names.
//
// # Notes
//
// A wasm module has exactly one handler and one set of globals, so the guest
// model is process-wide by nature. This package keeps that model: the
// registered handlers and the exchange being run are package state, guarded by
// one mutex that serialises every run (see Lock and Session).
package harness

import (
	"fmt"
	"strings"
	"sync"
)

// Field is one header line.
type Field struct {
	Name  string
	Value string
}

// Fields is an ordered header list with case-insensitive names.
type Fields []Field

// Get returns the first value of name, and whether it exists.
func (f Fields) Get(name string) (string, bool) {
	for _, fl := range f {
		if strings.EqualFold(fl.Name, name) {
			return fl.Value, true
		}
	}
	return "", false
}

// Values returns every value of name in order, or nil.
func (f Fields) Values(name string) []string {
	var out []string
	for _, fl := range f {
		if strings.EqualFold(fl.Name, name) {
			out = append(out, fl.Value)
		}
	}
	return out
}

// Names returns each distinct name once, lower-cased as the hookwall host
// reports them, in first-seen order.
func (f Fields) Names() []string {
	var out []string
next:
	for _, fl := range f {
		for _, n := range out {
			if strings.EqualFold(n, fl.Name) {
				continue next
			}
		}
		out = append(out, strings.ToLower(fl.Name))
	}
	return out
}

// Del removes every value of name.
func (f Fields) Del(name string) Fields {
	out := f[:0]
	for _, fl := range f {
		if !strings.EqualFold(fl.Name, name) {
			out = append(out, fl)
		}
	}
	// Clear the tail so removed strings are not kept alive by the backing array.
	for i := len(out); i < len(f); i++ {
		f[i] = Field{}
	}
	return out
}

// Set replaces every value of name with value.
func (f Fields) Set(name, value string) Fields {
	return append(f.Del(name), Field{Name: name, Value: value})
}

// Add appends one value of name.
func (f Fields) Add(name, value string) Fields {
	return append(f, Field{Name: name, Value: value})
}

// MergeCookies returns f with every Cookie field made one, at the place of
// the first, its cookies joined with "; ": the gateway keeps a request's
// cookies as one list, which a guest reads, and the upstream gets, as one
// Cookie value however many lines it came in. Empty pairs are dropped and
// the space around each is trimmed, as there; the gateway's further checks of
// each pair (a value it finds invalid is dropped) are not mirrored.
func (f Fields) MergeCookies() Fields {
	first := -1
	var pairs []string
	for i, fl := range f {
		if !strings.EqualFold(fl.Name, "Cookie") {
			continue
		}
		if first < 0 {
			first = i
		}
		for p := range strings.SplitSeq(fl.Value, ";") {
			if p = strings.Trim(p, " \t"); p != "" {
				pairs = append(pairs, p)
			}
		}
	}
	if first < 0 {
		return f
	}
	merged := Field{Name: f[first].Name, Value: strings.Join(pairs, "; ")}
	out := f.Del("Cookie")
	if len(pairs) == 0 {
		return out
	}
	out = append(out, Field{})
	copy(out[first+1:], out[first:])
	out[first] = merged
	return out
}

// Clone returns an independent copy.
func (f Fields) Clone() Fields {
	if f == nil {
		return nil
	}
	return append(Fields(nil), f...)
}

// Log is one message a guest logged.
type Log struct {
	Level int32
	Msg   string
}

// Body is a body as the ABI sees it: a stream read once per phase, and a
// pending write where the first write of a phase replaces and later ones
// append.
type Body struct {
	Data    []byte
	read    int
	written bool
}

// Read copies the unread part of the body into p.
func (b *Body) Read(p []byte) (n int, eof bool) {
	n = copy(p, b.Data[b.read:])
	b.read += n
	return n, b.read >= len(b.Data)
}

// Write applies one write_body call, and reports false, writing nothing more, when the
// body would grow past BodyLimit.
func (b *Body) Write(p []byte) (ok bool) {
	if !b.written {
		b.Data = b.Data[:0:0]
		b.written = true
	}
	if len(b.Data)+len(p) > BodyLimit {
		return false
	}
	b.Data = append(b.Data, p...)
	return true
}

// startPhase resets the per-phase stream state.
func (b *Body) startPhase() {
	b.read = 0
	b.written = false
}

// Exchange is one request (and possibly its response) as the guest sees it.
type Exchange struct {
	Method     string
	URI        string
	Proto      string
	ReqHeader  Fields
	ReqBody    Body
	SourceAddr string
	Route      string

	Status     int
	RespHeader Fields
	RespBody   Body

	Features   uint32
	Labels     map[string]string
	LabelCalls int
	// AddedHeaderBytes counts the headers the guest set or added in this exchange, as the
	// host does (AddedHeaderLimit).
	AddedHeaderBytes int
	Logs             []Log
}

// Phase says which guest export is running.
type Phase int

// The phases of an exchange.
const (
	PhaseNone Phase = iota
	PhaseRequest
	PhaseResponse
)

var (
	mu      sync.Mutex // serialises runs; see the package notes
	cur     *Exchange
	phase   Phase
	config  []byte
	onReq   func() bool
	onResp  func(isError bool)
	configs []func([]byte) error
)

// SetRequestHandler registers the handle_request callback.
func SetRequestHandler(h func() bool) { onReq = h }

// SetResponseHandler registers the handle_response callback.
func SetResponseHandler(h func(isError bool)) { onResp = h }

// AddConfigure registers a config parser run by Configure.
func AddConfigure(fn func([]byte) error) { configs = append(configs, fn) }

// Config returns the configuration of the simulated instance.
func Config() []byte { return config }

// Current returns the exchange being run, panicking outside a run as a real
// host would trap on a request function called outside a request.
func Current() *Exchange {
	if cur == nil {
		panic("sdk: request function called outside a handler")
	}
	return cur
}

// Peek returns the exchange being run, or nil outside a run.
func Peek() *Exchange { return cur }

// CurrentPhase returns the running phase.
func CurrentPhase() Phase { return phase }

// Session holds the harness lock; every harness operation happens inside one
// so that concurrent tests cannot interleave on the process-wide guest state.
type Session struct{ done bool }

// Lock starts a session.
func Lock() *Session {
	mu.Lock()
	return &Session{}
}

// Unlock ends the session.
func (s *Session) Unlock() {
	if !s.done {
		s.done = true
		cur, phase = nil, PhaseNone
		mu.Unlock()
	}
}

// Configure sets the instance configuration and runs every registered config
// parser with it, as instantiating a wasm module would.
func (s *Session) Configure(cfg []byte) (err error) {
	config = cfg
	defer recoverTo(&err, "configure")
	for _, fn := range configs {
		if err := fn(cfg); err != nil {
			return err
		}
	}
	return nil
}

// HandleRequest runs the request handler on x. Without a handler the guest
// proceeds, like the SDK's handle_request export does.
func (s *Session) HandleRequest(x *Exchange) (next bool, err error) {
	cur, phase = x, PhaseRequest
	defer func() { cur, phase = nil, PhaseNone }()
	x.ReqBody.startPhase()
	x.RespBody.startPhase()
	if onReq == nil {
		return true, nil
	}
	defer recoverTo(&err, "handle_request")
	return onReq(), nil
}

// HandleResponse runs the response handler, if any, on x.
func (s *Session) HandleResponse(x *Exchange, isError bool) (err error) {
	cur, phase = x, PhaseResponse
	defer func() { cur, phase = nil, PhaseNone }()
	x.ReqBody.startPhase()
	x.RespBody.startPhase()
	if onResp == nil {
		return nil
	}
	defer recoverTo(&err, "handle_response")
	onResp(isError)
	return nil
}

// recoverTo turns a guest panic into an error, as a trap would end a wasm call.
func recoverTo(err *error, what string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("sdktest: %s panicked: %v", what, r)
	}
}

// Limits and checks of the hookwall host (engine/filter), mirrored so that a
// guest the harness accepts is one the gateway accepts. A violation traps the
// guest there; here it panics, which the session reports as an error.
//
// The header budget counts every header a guest sets or adds to one exchange (both
// phases), each as its name, its value and AddedHeaderOverhead bytes. A body written
// may not outgrow the filter's memory cap: BodyLimit is the cap's default (the
// [[filter]] memory key), so a filter configured with a smaller cap is refused a body
// the harness takes.
const (
	LabelKeyLimit       = 128
	LabelValueLimit     = 1024
	LabelCountLimit     = 64
	AddedHeaderLimit    = 1 << 20
	AddedHeaderOverhead = 64
	BodyLimit           = 32 << 20
)

// Trap panics like a host function trapping the guest.
func Trap(fn, msg string) {
	panic("sdk: " + fn + ": " + msg)
}

// IsToken reports whether s is a non-empty RFC 9110 token (method, header
// name).
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// IsFieldValue reports whether s may be a header value: no control
// characters except HTAB.
func IsFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// IsOriginForm reports whether s is a target the gateway's set_uri takes: a
// path starting with '/' and an optional query, of the characters RFC 3986
// allows there (unreserved, sub-delims, ':', '@', '/', '?', and '%' followed
// by two hex digits), and in the query also '[', ']', '{', '}', '|', '^' and
// '`'. So no whitespace, control characters, bytes over 0x7e, fragment, or
// '"', '<', '>', '\'.
func IsOriginForm(s string) bool {
	if s == "" || s[0] != '/' {
		return false
	}
	inQuery := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		case c == '?':
			inQuery = true
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0,
			inQuery && strings.IndexByte("[]{}|^`", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
