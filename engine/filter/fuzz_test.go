package filter

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/httpsyntax"
)

// Selectors of testdata/fuzzguest.wat records.
const (
	fzEnableFeatures = iota
	fzGetConfig
	fzLogEnabled
	fzLog
	fzGetMethod
	fzSetMethod
	fzGetURI
	fzSetURI
	fzGetProtocolVersion
	fzGetHeaderNames
	fzGetHeaderValues
	fzSetHeaderValue
	fzAddHeaderValue
	fzRemoveHeader
	fzReadBody
	fzWriteBody
	fzGetStatusCode
	fzSetStatusCode
	fzGetSourceAddr
	fzSetLabel
	fzGetRoute
	fzResult
	fzStore
	fzGrow

	// fzResponse marks a record for handle_response.
	fzResponse = 0x80
)

// Offsets of the strings fuzzguest.wat keeps in its memory.
const (
	fzStrXFuzz    = 0  // "x-fuzz"
	fzStrOK       = 8  // "ok"
	fzStrPOST     = 16 // "POST"
	fzStrURI      = 24 // "/fuzz?q=1"
	fzStrCL       = 40 // "content-length"
	fzStrTE       = 56 // "transfer-encoding"
	fzStrChunked  = 80 // "chunked"
	fzStrHost     = 88 // "host"
	fzStrCRLF     = 96 // "a\r\nb"
	fzStrFive     = 104
	fzScratch     = 256 // free memory below the records
	fzScratchSize = 512
)

// rec encodes one fuzzguest record: a selector and up to five arguments.
func rec(sel byte, args ...uint32) []byte {
	b := make([]byte, 21)
	b[0] = sel
	for j, a := range args {
		binary.LittleEndian.PutUint32(b[1+4*j:], a)
	}
	return b
}

func recs(rs ...[]byte) []byte { return bytes.Join(rs, nil) }

// fuzzControl is a well-formed record list whose effects the control
// request checks: enable buffer_response, set label x-fuzz=ok, return next
// with request context 7, and in handle_response set response header
// x-fuzz: ok. Its strings follow its records in the body (the guest reads
// the body to offset 1024), because an input before it may have written
// over the guest's own strings.
var fuzzControl = func() []byte {
	const name, value = 1024 + 4*21, 1024 + 4*21 + 6
	return append(recs(
		rec(fzEnableFeatures, 2),
		rec(fzResponse|fzSetHeaderValue, 1, name, 6, value, 2),
		rec(fzSetLabel, name, 6, value, 2),
		rec(fzResult, 1, 7),
	), "x-fuzzok"...)
}()

// fuzzSeeds are the starting points of FuzzHostFunctions (also checked in
// under testdata/fuzz/FuzzHostFunctions): valid calls of every function,
// the guest ending the request, and one bad input of each sort, each with
// the outcome TestFuzzGuestSeeds expects ("" = success).
var fuzzSeeds = []struct {
	name string
	body []byte
	kind ErrorKind
	next bool
}{
	{"empty", nil, "", true},
	{"control", fuzzControl, "", true},
	{"every function", recs(
		rec(fzEnableFeatures, 3),
		rec(fzLogEnabled, 0),
		rec(fzLog, 0, fzStrOK, 2),
		rec(fzGetConfig, fzScratch, fzScratchSize),
		rec(fzGetMethod, fzScratch, fzScratchSize),
		rec(fzGetURI, fzScratch, fzScratchSize),
		rec(fzGetProtocolVersion, fzScratch, fzScratchSize),
		rec(fzGetHeaderNames, 0, fzScratch, fzScratchSize),
		rec(fzGetHeaderValues, 0, fzStrHost, 4, fzScratch, fzScratchSize),
		rec(fzGetSourceAddr, fzScratch, fzScratchSize),
		rec(fzGetRoute, fzScratch, fzScratchSize),
		rec(fzGetStatusCode),
		rec(fzReadBody, 0, fzScratch, 16),
		rec(fzSetMethod, fzStrPOST+1, 3), // "OST"
		rec(fzSetURI, fzStrURI, 9),
		rec(fzAddHeaderValue, 0, fzStrXFuzz, 6, fzStrOK, 2),
		rec(fzSetHeaderValue, 0, fzStrHost, 4, fzStrOK, 2),
		rec(fzRemoveHeader, 0, fzStrXFuzz, 6),
		rec(fzWriteBody, 0, fzStrOK, 2),
		rec(fzSetLabel, fzStrXFuzz, 6, fzStrOK, 2),
		rec(fzGrow, 1),
		rec(fzGetURI, 70000, 64), // valid after the grow
		rec(fzResponse|fzGetStatusCode),
		rec(fzResponse|fzReadBody, 0, fzScratch, 16), // buffer_request
		rec(fzResponse|fzReadBody, 1, fzScratch, 16),
		rec(fzResponse|fzGetHeaderNames, 1, fzScratch, fzScratchSize),
		rec(fzResponse|fzSetStatusCode, 201),
		rec(fzResponse|fzWriteBody, 1, fzStrOK, 2),
	), "", true},
	{"guest answers", recs(
		rec(fzSetStatusCode, 403),
		rec(fzSetHeaderValue, 1, fzStrXFuzz, 6, fzStrOK, 2),
		rec(fzWriteBody, 1, fzStrOK, 2),
		rec(fzResult, 0, 0),
	), "", false},
	{"framing headers", recs(
		rec(fzSetHeaderValue, 0, fzStrTE, 17, fzStrChunked, 7),
		rec(fzSetHeaderValue, 0, fzStrCL, 14, fzStrFive, 1),
		rec(fzAddHeaderValue, 0, fzStrHost, 4, fzStrOK, 2),
	), "", true},
	// A header block past bufio's default 4 KiB: the read-back must take it whole. The
	// value is the body's own bytes after the records; the guest runs those too, and 'X'
	// (88 % 24 = 16) is get_status_code, which takes no argument.
	{"header past 4 KiB", append(
		rec(fzSetHeaderValue, 0, fzStrXFuzz, 6, 1024+21, 5000),
		bytes.Repeat([]byte("X"), 5000)...), "", true},
	{"buffer past memory", rec(fzGetURI, 0xfffffff0, 64), KindABI, false},
	{"offset+length wraps", rec(fzLog, 0, 0xffff0000, 0x20000), KindABI, false},
	{"region crosses the end", rec(fzGetURI, 65528, 64), KindABI, false},
	{"CRLF in a value", rec(fzSetHeaderValue, 0, fzStrXFuzz, 6, fzStrCRLF, 4), KindABI, false},
	{"unknown kind", rec(fzGetHeaderNames, 9, fzScratch, 64), KindABI, false},
	{"status out of range", rec(fzSetStatusCode, 1000), KindABI, false},
	{"interim status", recs(rec(fzSetStatusCode, 100), rec(fzResult, 0, 0)), KindABI, false},
	{"switching protocols", recs(rec(fzSetStatusCode, 101), rec(fzResult, 0, 0)), KindABI, false},
	{"guest store out of bounds", rec(fzStore, 0x20000, 1), KindTrap, false},
	{"request change after next", rec(fzResponse|fzSetMethod, fzStrPOST, 4), KindABI, true},
	{"response change without buffer_response", rec(fzResponse|fzWriteBody, 1, fzStrOK, 2), KindABI, true},
}

// fuzzRig is one Filter of fuzzguest per fuzzing process, shared by every
// input, as a gateway shares a Filter between requests.
type fuzzRig struct {
	f          *Filter
	goroutines int // after the first input
	once       sync.Once
}

// FuzzHostFunctions feeds the http-wasm host functions the pointers,
// lengths and kinds a guest takes from the fuzzer (testdata/fuzzguest.wat
// reads them from the request body). Whatever the input:
//   - the host does not panic (a host function's runtime error would come
//     back "recovered by wazero"), and the process lives;
//   - the request ends with next/no-next, or an *Error of Kind abi (the
//     host refused the call) or trap (the guest's own fault), never
//     another kind;
//   - after an error the instance is discarded, never pooled;
//   - after success, what would be forwarded (next) or answered (no next)
//     is well-formed HTTP that reads back as the same message: a guest
//     cannot smuggle a second request or header;
//   - a well-formed request on the same Filter still works afterwards;
//   - goroutines do not pile up.
func FuzzHostFunctions(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s.body)
	}
	rig := newFuzzRig(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rig.run(t, body)
	})
}

func newFuzzRig(tb testing.TB) *fuzzRig {
	return &fuzzRig{f: load(tb, newHost(tb), Spec{
		Name:   "fuzz",
		Module: testdata(tb, "fuzzguest.wasm"),
		Config: []byte("fuzz-config"),
		// The guest may grow to 2 pages; a cap of 4 keeps KindOOM out of
		// the picture, which is about the guest, not the host.
		Memory:  4 * pageSize,
		Pool:    1,
		PoolMax: 1, // the settle check counts one instance: no on-demand growth beside the refill
		Timeout: 10 * time.Second,
	})}
}

// TestFuzzGuestSeeds checks that fuzzguest does what its records say: each
// seed ends as expected and the successful ones change the request or
// answer as asked. Without it the fuzz target could pass on a guest that
// never reached the host.
func TestFuzzGuestSeeds(t *testing.T) {
	rig := newFuzzRig(t)
	for _, s := range fuzzSeeds {
		t.Run(s.name, func(t *testing.T) {
			next, resp, req, err := rig.request(t, s.body, true, nil)
			// Then the fuzz target's own checks on the same body.
			defer rig.run(t, s.body)
			if s.kind != "" {
				wantKind(t, err, s.kind)
				checkFuzzError(t, err)
				return
			}
			if err != nil || next != s.next {
				t.Fatalf("next=%v err=%v, want next=%v", next, err, s.next)
			}
			switch s.name {
			case "every function":
				if m, u, b := string(req.Header.Method()), string(req.RequestURI()), string(req.Body()); m != "OST" || u != "/fuzz?q=1" || b != "ok" {
					t.Errorf("request %s %s body %q, want OST /fuzz?q=1 body ok", m, u, b)
				}
				if h, x := string(req.Header.Host()), req.Header.Peek("X-Fuzz"); h != "ok" || x != nil {
					t.Errorf("host %q, x-fuzz %q: want ok and removed", h, x)
				}
				if resp.StatusCode() != 201 || string(resp.Body()) != "ok" {
					t.Errorf("response phase: status %d body %q, want 201 ok", resp.StatusCode(), resp.Body())
				}
			case "guest answers":
				if resp.StatusCode() != 403 || string(resp.Body()) != "ok" || string(resp.Header.Peek("X-Fuzz")) != "ok" {
					t.Errorf("response %d body %q x-fuzz %q", resp.StatusCode(), resp.Body(), resp.Header.Peek("X-Fuzz"))
				}
			}
		})
	}
}

func (r *fuzzRig) run(t *testing.T, body []byte) {
	before := r.f.Stats()
	next, resp, req, err := r.request(t, body, true, nil)
	after := r.f.Stats()
	if err != nil {
		checkFuzzError(t, err)
		if after.Discarded != before.Discarded+1 {
			t.Fatalf("instance not discarded after %v: stats %+v", err, after)
		}
	} else {
		if after.Discarded != before.Discarded {
			t.Fatalf("instance discarded without an error: stats %+v", after)
		}
		if next {
			checkForwardable(t, req)
		} else {
			checkAnswerable(t, resp)
		}
	}
	r.control(t)
	r.once.Do(func() { r.goroutines = runtime.NumGoroutine() })
	checkGoroutines(t, r.goroutines)
}

// request runs one request with body through handle_request and, on next,
// handle_response; on a new instance when fresh is set.
func (r *fuzzRig) request(t *testing.T, body []byte, fresh bool, labels map[string]string) (bool, *fasthttp.Response, *fasthttp.Request, error) {
	t.Helper()
	req, resp := &fasthttp.Request{}, &fasthttp.Response{}
	req.Header.SetMethod("POST")
	req.SetRequestURI("/hooks/fuzz?a=1")
	req.Header.SetHost("example.com")
	req.Header.Set("X-Fuzz", "in")
	req.Header.SetContentType("application/octet-stream")
	req.SetBody(body)
	nlabels := 0
	ex := &Exchange{Req: req, Resp: resp, Route: "fuzz", RemoteAddr: "127.0.0.1:4242", Scheme: "http",
		SetLabel: func(k, v string) {
			nlabels++
			if k == "" || len(k) > labelKeyLimit || len(v) > labelValueLimit || nlabels > labelCountLimit {
				t.Errorf("label %q=%q (#%d) passed the host's limits", k, v, nlabels)
			}
			if labels != nil {
				labels[k] = v
			}
		}}
	inst, err := r.f.Acquire(testCtx)
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	if fresh && inst.uses > 0 {
		// Recycle the instance (as MaxUses would) so the input does not
		// depend on what earlier inputs left in guest memory, and a
		// failure replays from its input alone.
		inst.uses = r.f.maxUses
		inst.Release()
		if inst, err = r.f.Acquire(testCtx); err != nil {
			t.Fatalf("acquire: %v", err)
		}
		if inst.uses != 0 {
			t.Fatalf("acquired a used instance (%d uses) after recycling", inst.uses)
		}
	}
	defer inst.Release()
	next, err := inst.HandleRequest(testCtx, ex)
	if err == nil && next {
		resp.SetBodyString("from upstream")
		err = inst.HandleResponse(testCtx, ex, false)
	}
	return next, resp, req, err
}

// control runs the well-formed request and checks its effects: the Filter
// is unharmed by whatever came before.
func (r *fuzzRig) control(t *testing.T) {
	t.Helper()
	labels := map[string]string{}
	next, resp, _, err := r.request(t, fuzzControl, false, labels)
	if err != nil || !next {
		t.Fatalf("control request after the input: next=%v err=%v", next, err)
	}
	if got := string(resp.Header.Peek("X-Fuzz")); got != "ok" {
		t.Errorf("control request: response x-fuzz %q, want ok", got)
	}
	if labels["x-fuzz"] != "ok" || len(labels) != 1 {
		t.Errorf("control request: labels %v", labels)
	}
	// The pool is back to one idle instance (a discarded one was replaced
	// by the refill or by Acquire), so the goroutine count is comparable.
	deadline := time.Now().Add(5 * time.Second)
	for st := r.f.Stats(); st.Idle != 1 || st.Live != 1 || r.f.refilling.Load(); st = r.f.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("pool did not settle: %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}

// checkFuzzError accepts only what a guest can cause: an ABI violation the
// host refused, or a wasm trap of the guest's own code.
func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %T %v is not a *filter.Error", err, err)
	}
	var re runtime.Error
	if errors.As(err, &re) {
		t.Fatalf("host function panicked: %v", err)
	}
	switch fe.Kind {
	case KindABI:
		var abi *abiError
		if !errors.As(err, &abi) {
			t.Fatalf("kind abi without an abiError: %v", err)
		}
	case KindTrap:
		// A guest trap is a wasm runtime error; anything recovered from a
		// host function that is not an abiError is a host bug.
		msg := err.Error()
		if !strings.Contains(msg, "wasm error: ") || strings.Contains(msg, "recovered by wazero") {
			t.Fatalf("trap that is not the guest's: %v", err)
		}
	default:
		t.Fatalf("error kind %q, want abi or trap: %v", fe.Kind, err)
	}
}

// checkForwardable checks that the request a guest changed is one HTTP/1.1
// request with valid method, target and fields, and that it reads back as
// itself after fasthttp writes it the way the proxy does.
func checkForwardable(t *testing.T, req *fasthttp.Request) {
	t.Helper()
	method, uri := bytes.Clone(req.Header.Method()), bytes.Clone(req.Header.RequestURI())
	if !httpsyntax.IsToken(method) {
		t.Fatalf("forwarded method %q is not a token", method)
	}
	if !isOriginForm(uri) {
		t.Fatalf("forwarded target %q is not origin-form", uri)
	}
	for k, v := range req.Header.All() {
		if !httpsyntax.IsToken(k) || !httpsyntax.IsFieldValue(v) {
			t.Fatalf("forwarded header %q: %q", k, v)
		}
	}
	body := bytes.Clone(req.Body())
	// As the proxy does (engine/internal/server): the target as the filters left
	// it, the upstream's Host.
	req.SetRequestURIBytes(uri)
	req.Header.SetHost("upstream.test")
	req.UseHostHeader = true
	wire := writeWire(t, req.Write)
	var back fasthttp.Request
	br := wireReader(wire)
	if err := back.Read(br); err != nil {
		t.Fatalf("forwarded request does not read back: %v\n%q", err, wire)
	}
	if rest, _ := br.Peek(1); len(rest) > 0 {
		t.Fatalf("forwarded request has bytes after its end (a second request):\n%q", wire)
	}
	if !bytes.Equal(back.Header.Method(), method) || !bytes.Equal(back.Header.RequestURI(), uri) || !bytes.Equal(back.Body(), body) {
		t.Fatalf("forwarded request reads back as %s %s body %q, was %s %s body %q\n%q",
			back.Header.Method(), back.Header.RequestURI(), back.Body(), method, uri, body, wire)
	}
}

// checkAnswerable checks that the response a guest wrote is one valid
// HTTP/1.1 response that reads back as itself.
func checkAnswerable(t *testing.T, resp *fasthttp.Response) {
	t.Helper()
	status := resp.StatusCode()
	if status < 200 || status > 599 {
		t.Fatalf("response status %d", status)
	}
	for k, v := range resp.Header.All() {
		if !httpsyntax.IsToken(k) || !httpsyntax.IsFieldValue(v) {
			t.Fatalf("response header %q: %q", k, v)
		}
	}
	body := bytes.Clone(resp.Body())
	wire := writeWire(t, resp.Write)
	var back fasthttp.Response
	br := wireReader(wire)
	if err := back.Read(br); err != nil {
		t.Fatalf("response does not read back: %v\n%q", err, wire)
	}
	if rest, _ := br.Peek(1); len(rest) > 0 {
		t.Fatalf("response has bytes after its end:\n%q", wire)
	}
	bodiless := status == 204 || status == 304
	if back.StatusCode() != status || (!bodiless && !bytes.Equal(back.Body(), body)) {
		t.Fatalf("response reads back as %d body %q, was %d body %q\n%q", back.StatusCode(), back.Body(), status, body, wire)
	}
}

// wireReader reads wire back whole: what a guest wrote may make a header block past
// bufio's 4 KiB default, and its size is not what these checks are about.
func wireReader(wire []byte) *bufio.Reader {
	return bufio.NewReaderSize(bytes.NewReader(wire), max(4096, len(wire)))
}

func writeWire(t *testing.T, write func(*bufio.Writer) error) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	if err := write(w); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkGoroutines fails when the goroutine count stays above base: wazero's
// per-call watcher may take a moment to exit, a leak never does.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	const slack = 2
	deadline := time.Now().Add(2 * time.Second)
	for n := runtime.NumGoroutine(); n > base+slack; n = runtime.NumGoroutine() {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d after the first input", n, base)
		}
		time.Sleep(time.Millisecond)
	}
}
