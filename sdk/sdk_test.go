package sdk_test

import (
	"bytes"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/sdk"
	"github.com/hookwall/hookwall/sdk/sdktest"
)

// The test binary is one guest: these hooks let each test choose what the
// registered handlers do. Tests are not parallel; sdktest serialises runs.
var (
	onRequest  func(req sdk.Request, resp sdk.Response) bool
	onResponse func(req sdk.Request, resp sdk.Response, isError bool)
	gotConfig  []byte
)

func init() {
	sdk.Configure(func(cfg []byte) error {
		if bytes.Equal(cfg, []byte("bad")) {
			return errors.New("bad config")
		}
		gotConfig = cfg
		return nil
	})
	sdk.Handle(func(req sdk.Request, resp sdk.Response) bool { return onRequest(req, resp) })
	sdk.HandleResponse(func(req sdk.Request, resp sdk.Response, isError bool) {
		if onResponse != nil {
			onResponse(req, resp, isError)
		}
	})
}

func run(t *testing.T, req *sdktest.Request, h func(sdk.Request, sdk.Response) bool) *sdktest.Result {
	t.Helper()
	f, err := sdktest.New("cfg")
	if err != nil {
		t.Fatal(err)
	}
	onRequest, onResponse = h, nil
	res, err := f.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRequestAccessors(t *testing.T) {
	long := strings.Repeat("v", 5000) // larger than the initial scratch buffer
	req := sdktest.NewRequest("PATCH", "/hooks/x?a=1", []byte("payload")).
		WithHeader("X-One", "1").
		WithHeader("X-Multi", "a").
		WithHeader("x-multi", "b").
		WithHeader("X-Long", long)
	req.SourceAddr = "10.0.0.1:1234"
	req.Route = "github"

	type seen struct {
		method, uri, proto, src, route, one, missing, long string
		multi, names                                       []string
		body                                               string
	}
	var s seen
	res := run(t, req, func(r sdk.Request, _ sdk.Response) bool {
		s = seen{
			method: r.Method(), uri: r.URI(), proto: r.ProtocolVersion(), src: r.SourceAddr(),
			route: sdk.Route(), one: r.Header("x-one"), missing: r.Header("X-Missing"),
			long: r.Header("X-Long"), multi: r.HeaderValues("X-MULTI"), names: r.HeaderNames(),
			body: string(r.Body()),
		}
		return true
	})
	want := seen{
		method: "PATCH", uri: "/hooks/x?a=1", proto: "HTTP/1.1", src: "10.0.0.1:1234", route: "github",
		one: "1", long: long, multi: []string{"a", "b"}, names: []string{"x-one", "x-multi", "x-long", "content-length"},
		body: "payload",
	}
	if s.long != long {
		t.Errorf("long header: got %d bytes, want %d", len(s.long), len(long))
	}
	s.long, want.long = "", ""
	if s.method != want.method || s.uri != want.uri || s.proto != want.proto || s.src != want.src ||
		s.route != want.route || s.one != want.one || s.missing != "" ||
		!slices.Equal(s.multi, want.multi) || !slices.Equal(s.names, want.names) || s.body != want.body {
		t.Fatalf("accessors saw %+v\nwant %+v", s, want)
	}
	if !res.Next {
		t.Fatal("handler returned true but Next is false")
	}
	if res.Features&sdk.FeatureBufferRequest == 0 {
		t.Error("reading the body did not enable buffer_request")
	}
	if res.Features&sdk.FeatureBufferResponse == 0 {
		t.Error("a registered response handler did not enable buffer_response")
	}
}

func TestRequestMutations(t *testing.T) {
	req := sdktest.NewRequest("POST", "/in", []byte("original")).
		WithHeader("X-Drop", "1").
		WithHeader("X-Keep", "k").
		WithHeader("X-Set", "old1").
		WithHeader("X-Set", "old2")
	res := run(t, req, func(r sdk.Request, _ sdk.Response) bool {
		r.SetMethod("PUT")
		r.SetURI("/out?b=2")
		r.RemoveHeader("x-drop")
		r.SetHeader("X-Set", "new")
		r.AddHeader("X-Keep", "k2")
		r.SetBody([]byte("one,"))
		r.SetBody([]byte("two")) // the ABI appends a second write
		return true
	})
	fw := res.Forwarded
	if fw.Method != "PUT" || fw.URI != "/out?b=2" {
		t.Errorf("forwarded %s %s, want PUT /out?b=2", fw.Method, fw.URI)
	}
	if fw.Header.Has("X-Drop") {
		t.Error("X-Drop still forwarded")
	}
	if got := fw.Header.Values("X-Set"); !slices.Equal(got, []string{"new"}) {
		t.Errorf("X-Set = %q, want [new]", got)
	}
	if got := fw.Header.Values("X-Keep"); !slices.Equal(got, []string{"k", "k2"}) {
		t.Errorf("X-Keep = %q, want [k k2]", got)
	}
	if string(fw.Body) != "one,two" {
		t.Errorf("forwarded body %q, want %q", fw.Body, "one,two")
	}
	if string(req.Body) != "original" {
		t.Errorf("the test's request was modified: %q", req.Body)
	}
}

func TestBodyIsCachedAndEditableInPlace(t *testing.T) {
	body := bytes.Repeat([]byte("abcdefgh"), 3000) // several read_body rounds
	var second []byte
	res := run(t, sdktest.NewRequest("POST", "/", body), func(r sdk.Request, _ sdk.Response) bool {
		b := r.Body()
		second = slices.Clone(r.Body())
		copy(b, "XY") // edit the SDK's buffer in place, then forward it
		r.SetBody(b)
		if got := r.Body(); !bytes.HasPrefix(got, []byte("XYcdefgh")) || len(got) != len(body) {
			t.Errorf("Body after SetBody = %.10q… (%d bytes)", got, len(got))
		}
		return true
	})
	if !bytes.Equal(second, body) {
		t.Errorf("second Body call returned %d bytes, want the same %d", len(second), len(body))
	}
	if want := append([]byte("XY"), body[2:]...); !bytes.Equal(res.Forwarded.Body, want) {
		t.Errorf("forwarded body differs from the in-place edit")
	}
}

func TestReadBodyStreams(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 100)
	var got []byte
	var rest []byte
	run(t, sdktest.NewRequest("POST", "/", body), func(r sdk.Request, _ sdk.Response) bool {
		p := make([]byte, 64)
		for range 3 {
			n, eof := r.ReadBody(p)
			got = append(got, p[:n]...)
			if eof {
				t.Error("eof too early")
			}
		}
		rest = slices.Clone(r.Body())
		if n, eof := r.ReadBody(p); n != 0 || !eof {
			t.Errorf("ReadBody after Body = %d, %v; want 0, true", n, eof)
		}
		return true
	})
	if !bytes.Equal(got, body[:192]) || !bytes.Equal(rest, body[192:]) {
		t.Errorf("streamed %d + rest %d bytes do not split the body at 192", len(got), len(rest))
	}
}

func TestDeny(t *testing.T) {
	res := run(t, sdktest.NewRequest("POST", "/", nil), func(sdk.Request, sdk.Response) bool {
		sdk.SetLabel("why", "nope")
		return sdk.Deny(451, "unavailable")
	})
	if res.Next {
		t.Fatal("Deny returned true")
	}
	r := res.Response
	if r.Status != 451 || string(r.Body) != "unavailable" || !strings.HasPrefix(r.Header.Get("content-type"), "text/plain") {
		t.Errorf("response = %d %q %q", r.Status, r.Header.Get("Content-Type"), r.Body)
	}
	if res.Labels["why"] != "nope" {
		t.Errorf("labels = %v", res.Labels)
	}
}

func TestLabelsLogsConfig(t *testing.T) {
	var cfg []byte
	res := run(t, sdktest.NewRequest("POST", "/", nil), func(sdk.Request, sdk.Response) bool {
		sdk.SetLabel("a", "1")
		sdk.SetLabel("a", "2")
		sdk.SetLabel("b", "")
		sdk.Log(sdk.LevelWarn, "careful")
		cfg = sdk.Config()
		return true
	})
	if len(res.Labels) != 2 || res.Labels["a"] != "2" || res.Labels["b"] != "" {
		t.Errorf("labels = %v, want a=2 b=", res.Labels)
	}
	if len(res.Logs) != 1 || res.Logs[0] != (sdktest.LogEntry{Level: sdk.LevelWarn, Msg: "careful"}) {
		t.Errorf("logs = %v", res.Logs)
	}
	if string(cfg) != "cfg" || string(gotConfig) != "cfg" {
		t.Errorf("Config() = %q, Configure saw %q; want cfg", cfg, gotConfig)
	}
}

func TestConfigureErrorAndSwitching(t *testing.T) {
	if _, err := sdktest.New("bad"); err == nil || !strings.Contains(err.Error(), "bad config") {
		t.Fatalf("New(bad) error = %v", err)
	}
	a, err := sdktest.New("A")
	if err != nil {
		t.Fatal(err)
	}
	b, err := sdktest.New("B")
	if err != nil {
		t.Fatal(err)
	}
	onRequest = func(sdk.Request, sdk.Response) bool {
		sdk.SetLabel("cfg", string(gotConfig))
		return true
	}
	for _, c := range []struct {
		f    *sdktest.Filter
		want string
	}{{a, "A"}, {b, "B"}, {a, "A"}} {
		res, err := c.f.Do(sdktest.NewRequest("POST", "/", nil))
		if err != nil {
			t.Fatal(err)
		}
		if res.Labels["cfg"] != c.want {
			t.Errorf("filter configured with %s ran with %q", c.want, res.Labels["cfg"])
		}
	}
}

func TestResponsePhase(t *testing.T) {
	f, err := sdktest.New("cfg")
	if err != nil {
		t.Fatal(err)
	}
	var sawErr bool
	onRequest = func(sdk.Request, sdk.Response) bool { return true }
	onResponse = func(_ sdk.Request, resp sdk.Response, isError bool) {
		sawErr = isError
		b := resp.Body()
		resp.SetBody(bytes.ToUpper(b))
		resp.SetStatusCode(resp.StatusCode() + 1)
		resp.SetHeader("X-Seen", resp.Header("X-Up"))
		resp.RemoveHeader("X-Up")
	}
	up := &sdktest.Response{Status: 201, Body: []byte("created")}
	up.Header.Set("X-Up", "yes")
	res, err := f.RoundTrip(sdktest.NewRequest("POST", "/", nil), up, true)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Response
	if r.Status != 202 || string(r.Body) != "CREATED" || r.Header.Get("X-Seen") != "yes" || r.Header.Has("X-Up") || !sawErr {
		t.Errorf("response = %d %q X-Seen=%q X-Up=%v isError=%v", r.Status, r.Body, r.Header.Get("X-Seen"), r.Header.Has("X-Up"), sawErr)
	}
	if string(up.Body) != "created" {
		t.Error("the test's upstream response was modified")
	}

	// A denied request never reaches the response phase.
	onRequest = func(sdk.Request, sdk.Response) bool { return sdk.Deny(403, "no") }
	onResponse = func(_ sdk.Request, resp sdk.Response, _ bool) { resp.SetStatusCode(299) }
	res, err = f.RoundTrip(sdktest.NewRequest("POST", "/", nil), up, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Next || res.Response.Status != 403 {
		t.Errorf("denied round trip: next=%v status=%d", res.Next, res.Response.Status)
	}
	if _, err := f.RoundTrip(sdktest.NewRequest("POST", "/", nil), nil, false); !errors.Is(err, sdktest.ErrNoUpstream) {
		t.Errorf("RoundTrip without upstream: %v", err)
	}
}

func TestPanicIsAnError(t *testing.T) {
	f, err := sdktest.New("cfg")
	if err != nil {
		t.Fatal(err)
	}
	onRequest = func(sdk.Request, sdk.Response) bool { panic("boom") }
	if _, err := f.Do(sdktest.NewRequest("POST", "/", nil)); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("Do = %v, want the panic as an error", err)
	}
	// The harness is usable afterwards.
	onRequest = func(sdk.Request, sdk.Response) bool { return true }
	if res, err := f.Do(sdktest.NewRequest("POST", "/", nil)); err != nil || !res.Next {
		t.Fatalf("after a panic: %v %v", res, err)
	}
}

func TestOutsideHandlerPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Request.Method outside a handler did not panic")
		}
	}()
	sdk.Request{}.Method()
}

// TestHarnessTrapsLikeTheHost: what the gateway's host refuses (it traps
// the guest), the harness refuses too, so tests catch it.
func TestHarnessTrapsLikeTheHost(t *testing.T) {
	f, err := sdktest.New("cfg")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		h    func(req sdk.Request, resp sdk.Response)
	}{
		{"header value with CRLF", func(r sdk.Request, _ sdk.Response) { r.SetHeader("X-A", "a\r\nB: c") }},
		{"header name with space", func(r sdk.Request, _ sdk.Response) { r.AddHeader("X A", "v") }},
		{"empty header name", func(r sdk.Request, _ sdk.Response) { r.Header("") }},
		{"method not a token", func(r sdk.Request, _ sdk.Response) { r.SetMethod("GET /x") }},
		{"uri without slash", func(r sdk.Request, _ sdk.Response) { r.SetURI("http://evil/") }},
		{"uri with space", func(r sdk.Request, _ sdk.Response) { r.SetURI("/a b") }},
		{"method CONNECT", func(r sdk.Request, _ sdk.Response) { r.SetMethod("connect") }},
		{"uri with a quote", func(r sdk.Request, _ sdk.Response) { r.SetURI(`/a?b="c"`) }},
		{"uri with a byte over 0x7e", func(r sdk.Request, _ sdk.Response) { r.SetURI("/a?b=\xff") }},
		{"uri with a fragment", func(r sdk.Request, _ sdk.Response) { r.SetURI("/a#b") }},
		{"uri with a bad escape", func(r sdk.Request, _ sdk.Response) { r.SetURI("/a%zz") }},
		{"uri with brackets in the path", func(r sdk.Request, _ sdk.Response) { r.SetURI("/a[1]") }},
		{"status out of range", func(_ sdk.Request, w sdk.Response) { w.SetStatusCode(600) }},
		{"empty label key", func(sdk.Request, sdk.Response) { sdk.SetLabel("", "v") }},
		{"label key too long", func(sdk.Request, sdk.Response) { sdk.SetLabel(strings.Repeat("k", 129), "v") }},
		{"label value too long", func(sdk.Request, sdk.Response) { sdk.SetLabel("k", strings.Repeat("v", 1025)) }},
		{"too many labels", func(sdk.Request, sdk.Response) {
			for i := range 65 {
				sdk.SetLabel("k"+strconv.Itoa(i), "v")
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			onRequest = func(req sdk.Request, resp sdk.Response) bool { c.h(req, resp); return true }
			if _, err := f.Do(sdktest.NewRequest("POST", "/", nil)); err == nil {
				t.Error("accepted")
			}
		})
	}
	// Within the limits, the same calls pass.
	onRequest = func(r sdk.Request, w sdk.Response) bool {
		r.SetHeader("X-A", "a\tb")
		r.SetMethod("PURGE")
		r.SetURI("/x?a[]=1&j={b|c^d`}")
		r.SetURI("")
		w.SetStatusCode(599)
		sdk.SetLabel(strings.Repeat("k", 128), strings.Repeat("v", 1024))
		for i := range 63 {
			sdk.SetLabel("k"+strconv.Itoa(i), "v")
		}
		return true
	}
	res, err := f.Do(sdktest.NewRequest("POST", "/x", nil))
	if err != nil {
		t.Fatal(err)
	}
	if res.Forwarded.URI != "/" || res.Forwarded.Method != "PURGE" || len(res.Labels) != 64 {
		t.Errorf("forwarded %s %s with %d labels", res.Forwarded.Method, res.Forwarded.URI, len(res.Labels))
	}

	// After next the request is read-only.
	onRequest = func(sdk.Request, sdk.Response) bool { return true }
	onResponse = func(r sdk.Request, _ sdk.Response, _ bool) { r.SetHeader("X-Late", "1") }
	if _, err := f.RoundTrip(sdktest.NewRequest("POST", "/", nil), &sdktest.Response{}, false); err == nil {
		t.Error("changing the request after next was accepted")
	}
	// Labels are for the policy, which has decided after next.
	onResponse = func(sdk.Request, sdk.Response, bool) { sdk.SetLabel("late", "x") }
	if _, err := f.RoundTrip(sdktest.NewRequest("POST", "/", nil), &sdktest.Response{}, false); err == nil {
		t.Error("a label set after next was accepted")
	}
	onResponse = nil
}

// TestRoundTripMergesAsTheGatewayDoes: what the request phase wrote on the response before
// next stays under the upstream's answer, as the gateway merges them: the upstream's status,
// its headers beside the guest's (its Content-Type in place of the guest's, its hop-by-hop
// ones dropped), its body after the guest's; the response phase sees the merged response.
func TestRoundTripMergesAsTheGatewayDoes(t *testing.T) {
	f, err := sdktest.New("cfg")
	if err != nil {
		t.Fatal(err)
	}
	onRequest = func(_ sdk.Request, resp sdk.Response) bool {
		resp.SetHeader("X-Pre", "guest")
		resp.SetHeader("Content-Type", "text/plain")
		resp.SetBody([]byte("pre:"))
		return true
	}
	var saw string
	onResponse = func(_ sdk.Request, resp sdk.Response, _ bool) { saw = string(resp.Body()) }
	up := &sdktest.Response{Status: 201, Body: []byte("upstream ok")}
	up.Header.Set("Content-Type", "application/json")
	up.Header.Set("X-Up", "1")
	up.Header.Set("Connection", "X-Hop")
	up.Header.Set("X-Hop", "1")
	up.Header.Set("Upgrade", "h2c")
	res, err := f.RoundTrip(sdktest.NewRequest("POST", "/", nil), up, false)
	if err != nil {
		t.Fatal(err)
	}
	r := res.Response
	for _, hop := range []string{"Connection", "X-Hop", "Upgrade"} {
		if r.Header.Has(hop) {
			t.Errorf("the merged response carries the hop-by-hop %s, which the gateway does not pass on", hop)
		}
	}
	if r.Status != 201 || string(r.Body) != "pre:upstream ok" || saw != "pre:upstream ok" || r.Header.Get("X-Pre") != "guest" || r.Header.Get("X-Up") != "1" || len(r.Header.Values("Content-Type")) != 1 || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("merged response %d %q (the response phase saw %q), headers X-Pre %q X-Up %q Content-Type %q", r.Status, r.Body, saw, r.Header.Get("X-Pre"), r.Header.Get("X-Up"), r.Header.Values("Content-Type"))
	}
}

// TestTrailerTraps: a Trailer named through the header kind traps under the harness as under
// the gateway.
func TestTrailerTraps(t *testing.T) {
	f, err := sdktest.New("cfg")
	if err != nil {
		t.Fatal(err)
	}
	for _, set := range []func(sdk.Request, sdk.Response){
		func(r sdk.Request, _ sdk.Response) { r.SetHeader("Trailer", "X-Foo") },
		func(r sdk.Request, _ sdk.Response) { r.AddHeader("trailer", "X-Foo") },
		func(_ sdk.Request, w sdk.Response) { w.SetHeader("TRAILER", "X-Foo") },
	} {
		onRequest, onResponse = func(r sdk.Request, w sdk.Response) bool { set(r, w); return true }, nil
		if _, err := f.Do(sdktest.NewRequest("POST", "/", nil)); err == nil || !strings.Contains(err.Error(), "trailers are not supported") {
			t.Errorf("a guest set a Trailer header: %v, want the trap", err)
		}
	}
}

// TestDenyAfterABodyWrite: Deny after a body write appends to it, as the gateway does, and
// Response.Body then reads what is sent.
func TestDenyAfterABodyWrite(t *testing.T) {
	var read string
	res := run(t, sdktest.NewRequest("POST", "/", nil), func(_ sdk.Request, w sdk.Response) bool {
		w.SetBody([]byte("earlier;"))
		ok := sdk.Deny(403, "denied")
		read = string(w.Body())
		return ok
	})
	if res.Response.Status != 403 || string(res.Response.Body) != "earlier;denied" || read != "earlier;denied" {
		t.Errorf("Deny after a write: %d %q, Body() read %q", res.Response.Status, res.Response.Body, read)
	}
}

// TestHarnessRequestAsTheGatewayReadsIt: repeated Cookie lines are one value
// joined with "; ", as the gateway shows them (ABI.md, get_header_values),
// cookies a guest adds join that list, and a request with a body, or with a
// method that may have one, shows a Content-Length of the body received.
func TestHarnessRequestAsTheGatewayReadsIt(t *testing.T) {
	req := sdktest.NewRequest("POST", "/", []byte("hello")).
		WithHeader("Cookie", "a=1").WithHeader("X-Other", "o").WithHeader("cookie", "b=2;c=3")
	var cookies, added, lengths, afterWrite []string
	res := run(t, req, func(r sdk.Request, _ sdk.Response) bool {
		cookies = r.HeaderValues("Cookie")
		lengths = r.HeaderValues("Content-Length")
		r.AddHeader("Cookie", "d=4")
		added = r.HeaderValues("Cookie")
		r.SetBody([]byte("longer body"))
		afterWrite = r.HeaderValues("Content-Length")
		return true
	})
	if !slices.Equal(cookies, []string{"a=1; b=2; c=3"}) {
		t.Errorf("Cookie values %q, want one: a=1; b=2; c=3", cookies)
	}
	if !slices.Equal(added, []string{"a=1; b=2; c=3; d=4"}) {
		t.Errorf("after AddHeader: Cookie values %q, want a=1; b=2; c=3; d=4", added)
	}
	if !slices.Equal(lengths, []string{"5"}) || !slices.Equal(afterWrite, []string{"5"}) {
		t.Errorf("Content-Length %q, after a body write %q; want 5 (as received) both times", lengths, afterWrite)
	}
	if got := res.Forwarded.Header.Values("Content-Length"); !slices.Equal(got, []string{"11"}) {
		t.Errorf("forwarded Content-Length %q, want the forwarded body's 11", got)
	}
	for _, c := range []struct {
		method string
		body   string
		want   []string
	}{
		{"GET", "", nil}, {"HEAD", "", nil}, {"POST", "", []string{"0"}}, {"GET", "x", []string{"1"}},
	} {
		var got []string
		run(t, sdktest.NewRequest(c.method, "/", []byte(c.body)), func(r sdk.Request, _ sdk.Response) bool {
			got = r.HeaderValues("Content-Length")
			return true
		})
		if !slices.Equal(got, c.want) {
			t.Errorf("%s with %d body bytes: Content-Length %q, want %q", c.method, len(c.body), got, c.want)
		}
	}
	var chunked []string
	run(t, sdktest.NewRequest("POST", "/", []byte("x")).WithHeader("Transfer-Encoding", "chunked"), func(r sdk.Request, _ sdk.Response) bool {
		chunked = r.HeaderValues("Content-Length")
		return true
	})
	if chunked != nil {
		t.Errorf("chunked request: Content-Length %q, want none", chunked)
	}
}

// TestFeaturesAreEnabledBeforeNext: the host grants enable_features only before
// handle_request returns, and the harness with it. So the SDK enables what a registered
// response handler needs before next: it may read the request body (buffer_request) though
// the request handler never did, and change the upstream's answer (buffer_response). A
// feature asked for after next is not granted.
func TestFeaturesAreEnabledBeforeNext(t *testing.T) {
	f, err := sdktest.New("cfg")
	if err != nil {
		t.Fatal(err)
	}
	var body string
	var late sdk.Features
	onRequest = func(sdk.Request, sdk.Response) bool { return true }
	onResponse = func(r sdk.Request, w sdk.Response, _ bool) {
		body = string(r.Body())
		late = sdk.EnableFeatures(sdk.FeatureTrailers | sdk.FeatureBufferRequest)
		w.SetStatusCode(299)
	}
	defer func() { onResponse = nil }()
	res, err := f.RoundTrip(sdktest.NewRequest("POST", "/", []byte("sent")), &sdktest.Response{Status: 200}, false)
	if err != nil {
		t.Fatal(err)
	}
	if body != "sent" || res.Response.Status != 299 {
		t.Errorf("response handler read %q and answered %d", body, res.Response.Status)
	}
	if want := sdk.FeatureBufferRequest | sdk.FeatureBufferResponse; late != want || res.Features != want {
		t.Errorf("features %b after next, %b in all, want %b", late, res.Features, want)
	}
}

// TestHarnessHasTheHostsBudgets: the harness refuses what the gateway's host traps, at the
// same bounds: more than 1 MiB of headers set or added to one request (each counted with 64
// bytes besides its name and value), and a body written past the filter's memory cap (its
// default, 32 MiB).
func TestHarnessHasTheHostsBudgets(t *testing.T) {
	f, err := sdktest.New("cfg")
	if err != nil {
		t.Fatal(err)
	}
	const headerBudget = 1<<20 - len("X-A") - 64 // one header's value that fills the budget
	cases := []struct {
		name string
		ok   bool
		h    func(req sdk.Request, resp sdk.Response)
	}{
		{"2000 added headers of 1000 bytes", false, func(r sdk.Request, _ sdk.Response) {
			v := strings.Repeat("v", 1000)
			for i := range 2000 {
				r.AddHeader("X-Add-"+strconv.Itoa(i), v)
			}
		}},
		{"one header that fills the budget", true, func(r sdk.Request, _ sdk.Response) {
			r.SetHeader("X-A", strings.Repeat("v", headerBudget))
		}},
		{"one header a byte past it", false, func(r sdk.Request, _ sdk.Response) {
			r.SetHeader("X-A", strings.Repeat("v", headerBudget+1))
		}},
		{"request and response headers together", false, func(r sdk.Request, w sdk.Response) {
			r.SetHeader("X-A", strings.Repeat("v", headerBudget))
			w.SetHeader("X-B", "1")
		}},
		{"a body of the memory cap", true, func(r sdk.Request, _ sdk.Response) {
			r.SetBody(make([]byte, 32<<20))
		}},
		{"a body a byte past it", false, func(r sdk.Request, _ sdk.Response) {
			r.SetBody(make([]byte, 32<<20))
			r.SetBody([]byte{1})
		}},
		{"a response body past it", false, func(_ sdk.Request, w sdk.Response) {
			w.SetBody(make([]byte, 32<<20+1))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			onRequest = func(req sdk.Request, resp sdk.Response) bool { c.h(req, resp); return true }
			if _, err := f.Do(sdktest.NewRequest("POST", "/", nil)); (err == nil) != c.ok {
				t.Errorf("err = %v, want ok %v", err, c.ok)
			}
		})
	}
}
