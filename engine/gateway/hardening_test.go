package gateway

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// malformedCase is one request the gateway must refuse, as raw bytes.
type malformedCase struct {
	name      string
	raw       string
	halfClose bool
	want      int  // the status when an answer comes back
	mayDrop   bool // no answer is fine: the client half-closed mid-body, the gateway reads a clean EOF
}

// malformedCases are the requests of the first row of the bad-input table in SECURITY.md, and the smuggling tricks a
// lenient parser lets through. The marker path /smuggled must never reach the upstream.
func malformedCases() []malformedCase {
	const host = "Host: gw\r\n"
	long := strings.Repeat("a", 20<<10)
	manyHeaders := strings.Repeat("X-Filler: "+strings.Repeat("f", 100)+"\r\n", 100)
	smuggled := "GET /smuggled HTTP/1.1\r\n" + host + "\r\n"
	return []malformedCase{
		// Garbage request lines.
		{"garbage/words", "HELLO THERE\r\n\r\n", false, 400, false},
		{"garbage/binary", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", false, 400, false},
		{"garbage/nul-line", "\x00\x00\x00\x00\r\n\r\n", false, 400, false},
		{"garbage/no-uri", "POST\r\n" + host + "\r\n", false, 400, false},
		{"garbage/bad-version", "POST /hooks/a HTTP/9.9\r\n" + host + "\r\n", false, 400, false},
		{"garbage/extra-token", "POST /hooks/a HTTP/1.1 extra\r\n" + host + "\r\n", false, 400, false},
		{"garbage/space-in-uri", "POST /hooks/a b HTTP/1.1\r\n" + host + "\r\n", false, 400, false},
		{"garbage/ctl-in-uri", "POST /hooks/\x01a HTTP/1.1\r\n" + host + "\r\n", false, 400, false},
		{"garbage/absolute-form", "POST http://evil.example/smuggled HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n", false, 400, false},
		{"garbage/asterisk", "OPTIONS * HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n", false, 400, false},
		{"garbage/no-host-http11", "POST /hooks/a HTTP/1.1\r\nContent-Length: 0\r\n\r\n", false, 400, false},

		// Content-Length and Transfer-Encoding together: the classic smuggling pair, both ways.
		{"smuggle/CL.TE", "POST /hooks/a HTTP/1.1\r\n" + host + "Content-Length: " + strconv.Itoa(len("0\r\n\r\n"+smuggled)) + "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, false, 400, false},
		{"smuggle/TE.CL", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n" + chunk(smuggled) + "0\r\n\r\n", false, 400, false},
		{"smuggle/TE-obfuscated", "POST /hooks/a HTTP/1.1\r\n" + host + "Content-Length: 5\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled, false, 400, false},
		{"smuggle/TE-list", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled, false, 400, false},
		{"smuggle/TE-twice", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled, false, 400, false},
		{"smuggle/TE-space-before-colon", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, false, 400, false},
		{"smuggle/TE-http10", "POST /hooks/a HTTP/1.0\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, false, 400, false},
		{"smuggle/obs-fold", "POST /hooks/a HTTP/1.1\r\n" + host + "X-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + smuggled, false, 400, false},

		// A Transfer-Encoding other than chunked leaves the body's length unknown: fasthttp reads
		// "identity" as no body, so the body would be the next request.
		{"smuggle/TE-identity", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: identity\r\n\r\n" + smuggled, false, 400, false},
		{"smuggle/TE-identity-upper", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: IDENTITY\r\n\r\n" + smuggled, false, 400, false},
		{"smuggle/TE-empty", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding:\r\n\r\n" + smuggled, false, 400, false},

		// Trailer fields: the policy would not see them, the upstream would.
		{"trailer/field", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Internal-User: admin\r\n\r\n", false, 400, false},
		{"trailer/announced", "POST /hooks/a HTTP/1.1\r\n" + host + "Trailer: X-Internal-User\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Internal-User: admin\r\n\r\n", false, 400, false},
		{"trailer/repeats-a-header", "POST /hooks/a HTTP/1.1\r\n" + host + "X-Tenant: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Tenant: b\r\n\r\n", false, 400, false},
		{"trailer/forbidden-name", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\nHost: evil\r\n\r\n", false, 400, false},
		{"trailer/ctl-value", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\nX-A: a\x01b\r\n\r\n", false, 400, false},

		// Header names that are not tokens.
		{"name/inner-space", "POST /hooks/a HTTP/1.1\r\n" + host + "X Internal User: admin\r\nContent-Length: 0\r\n\r\n", false, 400, false},
		{"name/inner-space-te", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer Encoding: chunked\r\nContent-Length: 0\r\n\r\n", false, 400, false},

		// Duplicate or bad Content-Length.
		{"cl/duplicate-same", "POST /hooks/a HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", false, 400, false},
		{"cl/duplicate-diff", "POST /hooks/a HTTP/1.1\r\n" + host + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", false, 400, false},
		{"cl/list", "POST /hooks/a HTTP/1.1\r\n" + host + "Content-Length: 5, 5\r\n\r\nhello", false, 400, false},
		{"cl/negative", "POST /hooks/a HTTP/1.1\r\n" + host + "Content-Length: -5\r\n\r\nhello", false, 400, false},
		{"cl/plus", "POST /hooks/a HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\nhello", false, 400, false},
		{"cl/hex", "POST /hooks/a HTTP/1.1\r\n" + host + "Content-Length: 0x5\r\n\r\nhello", false, 400, false},
		{"cl/overflow", "POST /hooks/a HTTP/1.1\r\n" + host + "Content-Length: 99999999999999999999999\r\n\r\nhello", false, 400, false},

		// Invalid chunking.
		{"chunk/bad-size", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", false, 400, false},
		{"chunk/size-overflow", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\nhello\r\n0\r\n\r\n", false, 400, false},
		{"chunk/negative-size", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", false, 400, false},
		{"chunk/short-data", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n10\r\nhello\r\n0\r\n\r\n", true, 400, false},
		{"chunk/long-data", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n", false, 400, false},
		{"chunk/no-terminator", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n", true, 400, true},
		{"chunk/over-max-body", "POST /hooks/a HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n" + strings.Repeat(chunk(strings.Repeat("b", 8<<10)), 10) + "0\r\n\r\n", false, 413, false},

		// Headers over max_header (8KiB), one long line or many.
		{"header/one-long", "POST /hooks/a HTTP/1.1\r\n" + host + "X-Long: " + long + "\r\nContent-Length: 0\r\n\r\n", false, 431, false},
		{"header/many", "POST /hooks/a HTTP/1.1\r\n" + host + manyHeaders + "Content-Length: 0\r\n\r\n", false, 431, false},
		// More fields than max_headers (100), in few bytes: every later stage is linear in them.
		{"header/over-max_headers", "POST /hooks/a HTTP/1.1\r\n" + host + strings.Repeat("X-F: 1\r\n", 100) + "Content-Length: 0\r\n\r\n", false, 431, false},

		// NUL and control bytes in header names and values.
		{"ctl/nul-value", "POST /hooks/a HTTP/1.1\r\n" + host + "X-A: a\x00b\r\nContent-Length: 0\r\n\r\n", false, 400, false},
		{"ctl/nul-name", "POST /hooks/a HTTP/1.1\r\n" + host + "X-\x00A: a\r\nContent-Length: 0\r\n\r\n", false, 400, false},
		{"ctl/bell-value", "POST /hooks/a HTTP/1.1\r\n" + host + "X-A: a\x07b\r\nContent-Length: 0\r\n\r\n", false, 400, false},
		{"ctl/bare-cr", "POST /hooks/a HTTP/1.1\r\n" + host + "X-A: a\rX-B: b\r\nContent-Length: 0\r\n\r\n", false, 400, false},
		{"ctl/del-name", "POST /hooks/a HTTP/1.1\r\n" + host + "X-\x7fA: a\r\nContent-Length: 0\r\n\r\n", false, 400, false},
		{"ctl/no-colon", "POST /hooks/a HTTP/1.1\r\n" + host + "NoColonHere\r\nContent-Length: 0\r\n\r\n", false, 400, false},
		{"ctl/empty-name", "POST /hooks/a HTTP/1.1\r\n" + host + ": v\r\nContent-Length: 0\r\n\r\n", false, 400, false},

		// Over-long URL.
		{"url/long", "POST /hooks/" + long + " HTTP/1.1\r\n" + host + "Content-Length: 0\r\n\r\n", false, 431, false},

		// A body shorter than its Content-Length, then the client goes away.
		{"short-body", "POST /hooks/a HTTP/1.1\r\n" + host + "Content-Length: 100\r\n\r\nonly-part-of-it", true, 400, false},
		{"short-body/no-body", "POST /hooks/a HTTP/1.1\r\n" + host + "Content-Length: 100\r\n\r\n", true, 400, false},
		{"short-headers", "POST /hooks/a HTTP/1.1\r\n" + host + "Content-Le", true, 400, false},
	}
}

// chunk encodes s as one HTTP/1.1 chunk.
func chunk(s string) string {
	return strconv.FormatInt(int64(len(s)), 16) + "\r\n" + s + "\r\n"
}

// TestHardeningMalformedHTTP sends each malformed request raw over TCP on its own connection:
// each gets its 4xx (or, when the client left mid-body, nothing) and a closed connection,
// never a 5xx, and the upstream, which records every request that reaches it, sees none.
func TestHardeningMalformedHTTP(t *testing.T) {
	up := startUpstream(t)
	e := startHard(t, up.URL(), "", "off")
	pub, _ := e.g.Addrs()

	// The upstream's record works: a well-formed request reaches it exactly once.
	ok := rawExchange(t, nil, pub.String(), []byte("POST /hooks/ok HTTP/1.1\r\nHost: gw\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"), false, 5*time.Second)
	if len(ok.statuses) != 1 || ok.statuses[0] != 200 {
		t.Fatalf("control request: %v, want one 200", ok)
	}
	if n := len(up.requests()); n != 1 {
		t.Fatalf("control request: upstream saw %d requests, want 1", n)
	}

	for _, c := range malformedCases() {
		t.Run(c.name, func(t *testing.T) {
			res := rawExchange(t, nil, pub.String(), []byte(c.raw), c.halfClose, 5*time.Second)
			if !res.closed {
				t.Errorf("connection left open after a malformed request: %s", res)
			}
			switch {
			case len(res.statuses) == 0 && !c.mayDrop:
				t.Errorf("no answer: %s, want %d", res, c.want)
			case len(res.statuses) > 1:
				t.Errorf("more than one answer on one malformed request: %s", res)
			case len(res.statuses) == 1 && res.statuses[0] != c.want:
				t.Errorf("answer %s, want %d", res, c.want)
			}
			if len(res.statuses) == 0 {
				t.Logf("closed without an answer")
			}
		})
	}
	for _, r := range up.requests()[1:] {
		t.Errorf("reached the upstream: %s %s body=%q", r.Method, r.URI, r.Body)
	}
}

// TestHardeningPipelinedSmuggle sends a good request and, behind it on the same connection, a
// TE.CL pair whose chunked body hides a request: the good one is forwarded, the pair gets
// 400 and the connection is closed, and the hidden request is never seen as one.
func TestHardeningPipelinedSmuggle(t *testing.T) {
	up := startUpstream(t)
	e := startHard(t, up.URL(), "", "off")
	pub, _ := e.g.Addrs()
	hidden := "POST /smuggled HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n"
	raw := "POST /hooks/first HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nfirst" +
		"POST /hooks/second HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
		chunk(hidden) + "0\r\n\r\n" +
		"POST /hooks/third HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n"
	res := rawExchange(t, nil, pub.String(), []byte(raw), false, 5*time.Second)
	if !res.closed || len(res.statuses) != 2 || res.statuses[0] != 200 || res.statuses[1] != 400 {
		t.Fatalf("got %s, want 200 then 400 and the connection closed", res)
	}
	reqs := up.requests()
	if len(reqs) != 1 || reqs[0].URI != "/hooks/first" || string(reqs[0].Body) != "first" {
		for _, r := range reqs {
			t.Logf("upstream saw %s %s body=%q", r.Method, r.URI, r.Body)
		}
		t.Fatalf("upstream saw %d requests, want exactly /hooks/first", len(reqs))
	}
}

// TestHardeningMalformedRequestsLeakNothing checks that what fasthttp could not parse is not
// copied into the logs: its parse errors quote the raw header block, Authorization included.
func TestHardeningMalformedRequestsLeakNothing(t *testing.T) {
	up := startUpstream(t)
	e := startHard(t, up.URL(), "", "decisions.log")
	pub, _ := e.g.Addrs()
	const token = "hw-topsecret-5f1d"
	for _, raw := range []string{
		"HELLO\r\nAuthorization: Bearer " + token + "\r\n\r\n",
		"POST /hooks/a HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + token + "\r\nX-A: \x00\r\n\r\n",
		"POST /hooks/a HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + token + "\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
		"POST /hooks/a HTTP/9.9\r\nHost: gw\r\nAuthorization: Bearer " + token + "\r\n\r\n",
		"POST /hooks/a HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer " + token + "\r\nTransfer-Encoding: gzip\r\n\r\n",
	} {
		res := rawExchange(t, nil, pub.String(), []byte(raw), false, 5*time.Second)
		if len(res.statuses) != 1 || res.statuses[0] != 400 {
			t.Errorf("%q: %s, want 400", raw, res)
		}
		if strings.Contains(string(res.raw), token) {
			t.Errorf("the answer echoes the request's Authorization header: %q", res.raw)
		}
	}
	e.stop()
	raw, err := os.ReadFile(filepath.Join(e.dir, "decisions.log"))
	if err != nil {
		t.Fatal(err)
	}
	decisions := string(raw)
	if n := strings.Count(decisions, "\n"); n != 5 {
		t.Errorf("decision log has %d records, want 5 (one per refused request):\n%s", n, decisions)
	}
	for name, text := range map[string]string{"decision log": decisions, "process log": e.logBuf.String()} {
		if strings.Contains(text, token) {
			t.Errorf("the %s carries the Authorization token of a malformed request:\n%s", name, text)
		}
	}
}

// slowClient holds one connection that sends head at once, then trickles the rest of its
// request a byte at a time, the way a slowloris attack does, until the gateway cuts it or
// stop closes.
type slowClient struct {
	conn   net.Conn
	cut    chan time.Duration // when the gateway closed the connection, after dialling
	answer chan []byte        // what the gateway wrote before closing
}

func startSlowClient(t *testing.T, local, addr string, head, payload []byte, every time.Duration, stop <-chan struct{}) *slowClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", local, err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write(head); err != nil {
		t.Fatalf("write from %s: %v", local, err)
	}
	sc := &slowClient{conn: c, cut: make(chan time.Duration, 1), answer: make(chan []byte, 1)}
	start := time.Now()
	go func() {
		// The reader notices the gateway's close (EOF or reset) or answer (408).
		b, _ := io.ReadAll(c)
		sc.cut <- time.Since(start)
		sc.answer <- b
	}()
	go func() {
		tk := time.NewTicker(every)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			if _, err := c.Write(payload[i%len(payload) : i%len(payload)+1]); err != nil {
				return
			}
		}
	}()
	return sc
}

// TestHardeningSlowloris opens 160 connections from 16 loopback addresses that trickle their
// headers (and some their bodies) a byte every 100ms. A normal client must still be answered
// in under a second, and every slow connection must be cut at read_timeout.
func TestHardeningSlowloris(t *testing.T) {
	up := startUpstream(t)
	const readTimeout = 2 * time.Second // hardConfig's read_timeout
	e := startHard(t, up.URL(), "max_conns_per_ip = 20", "off")
	pub, _ := e.g.Addrs()

	headers := []byte("POST /hooks/slow HTTP/1.1\r\nHost: gw\r\n")
	trickleHeaders := []byte(strings.Repeat("X-Slow: trickle\r\n", 200))
	fullHeaders := []byte("POST /hooks/slow HTTP/1.1\r\nHost: gw\r\nContent-Length: 4096\r\n\r\n")
	trickleBody := bytes.Repeat([]byte("b"), 4096)
	stop := make(chan struct{})
	defer close(stop)
	var slow []*slowClient
	for i := 0; i < 160; i++ {
		local := "127.0.1." + strconv.Itoa(1+i%16)
		if i%4 == 0 {
			// The header block at once, then the body trickled.
			slow = append(slow, startSlowClient(t, local, pub.String(), fullHeaders, trickleBody, 100*time.Millisecond, stop))
			continue
		}
		slow = append(slow, startSlowClient(t, local, pub.String(), headers, trickleHeaders, 100*time.Millisecond, stop))
	}
	opened := time.Now()
	time.Sleep(300 * time.Millisecond) // every slow connection has sent something

	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < 5; i++ {
		start := time.Now()
		r, err := c.Post(e.base+"/hooks/normal", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatalf("normal request %d during the slowloris: %v", i, err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if el := time.Since(start); r.StatusCode != 200 || el >= time.Second {
			t.Fatalf("normal request %d during the slowloris: %d in %v, want 200 in < 1s", i, r.StatusCode, el)
		}
	}

	// Every slow connection is cut at read_timeout (408 or a plain close), never later.
	deadline := time.After(readTimeout + 3*time.Second)
	for i, sc := range slow {
		select {
		case d := <-sc.cut:
			if d < readTimeout-200*time.Millisecond {
				t.Errorf("slow connection %d cut after %v, before read_timeout %v", i, d, readTimeout)
			}
			if ans := <-sc.answer; len(ans) > 0 && !bytes.HasPrefix(ans, []byte("HTTP/1.1 408")) {
				t.Errorf("slow connection %d got %q, want a 408 or nothing", i, ans)
			}
		case <-deadline:
			t.Fatalf("slow connection %d still open %v after it opened; read_timeout is %v", i, time.Since(opened), readTimeout)
		}
	}
	for _, r := range up.requests() {
		if r.URI == "/hooks/slow" {
			t.Fatalf("a trickled request reached the upstream: %s body %d bytes", r.URI, len(r.Body))
		}
	}
}

// TestHardeningConnsPerIP fills max_conns_per_ip from one address: the next connection from
// it is refused with 429 and closed, while another address is still served.
func TestHardeningConnsPerIP(t *testing.T) {
	up := startUpstream(t)
	e := startHard(t, up.URL(), "max_conns_per_ip = 8", "off")
	pub, _ := e.g.Addrs()
	stop := make(chan struct{})
	defer close(stop)
	for i := 0; i < 8; i++ {
		startSlowClient(t, "127.0.2.1", pub.String(), []byte("POST /hooks/hold HTTP/1.1\r\n"), []byte("X-Hold: 1\r\n"), 200*time.Millisecond, stop)
	}
	time.Sleep(200 * time.Millisecond) // accepted and counted
	over := rawExchange(t, &net.TCPAddr{IP: net.ParseIP("127.0.2.1")}, pub.String(),
		[]byte("POST /hooks/over HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n"), false, 5*time.Second)
	if !over.closed || len(over.statuses) != 1 || over.statuses[0] != 429 {
		t.Fatalf("connection over max_conns_per_ip: %s, want 429 and closed", over)
	}
	other := rawExchange(t, &net.TCPAddr{IP: net.ParseIP("127.0.2.2")}, pub.String(),
		[]byte("POST /hooks/other HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), false, 5*time.Second)
	if len(other.statuses) != 1 || other.statuses[0] != 200 {
		t.Fatalf("another address while the first is at its limit: %s, want 200", other)
	}
	for _, r := range up.requests() {
		if r.URI == "/hooks/over" {
			t.Fatal("the refused connection's request reached the upstream")
		}
	}
}

// randomRequest builds one request from r: a random method, path, query, headers and body
// (empty, binary, JSON, near max_body or just over it). Well-formed framing unless mutate,
// which then flips bytes anywhere in it.
func randomRequest(r *rand.Rand, maxBody int, mutate bool) (raw []byte, method string, body []byte) {
	methods := []string{"POST", "POST", "POST", "GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "PROPFIND", "X-CUSTOM", "post"}
	method = methods[r.IntN(len(methods))]
	const pathChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@/%"
	var b bytes.Buffer
	b.WriteString(method + " /")
	for i, n := 0, r.IntN(120); i < n; i++ {
		c := pathChars[r.IntN(len(pathChars))]
		if c == '%' {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{byte(r.IntN(256))})))
			continue
		}
		b.WriteByte(c)
	}
	if r.IntN(3) == 0 {
		b.WriteString("?")
		for i, n := 0, r.IntN(6); i < n; i++ {
			b.WriteString("k" + strconv.Itoa(r.IntN(4)) + "=" + url.QueryEscape(string(randBytes(r, r.IntN(20)))) + "&")
		}
	}
	b.WriteString(" HTTP/1.1\r\nHost: gw\r\n")
	for i, n := 0, r.IntN(12); i < n; i++ {
		name := "X-" + randToken(r, 1+r.IntN(20))
		b.WriteString(name + ": " + randVisible(r, r.IntN(200)) + "\r\n")
	}
	switch r.IntN(8) {
	case 0:
		b.WriteString("Content-Type: application/json\r\n")
	case 1:
		b.WriteString("X-Forwarded-For: " + randVisible(r, 30) + "\r\n")
	case 2:
		b.WriteString("Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\n")
	case 3:
		b.WriteString("Expect: 100-continue\r\n")
	}
	switch k := r.IntN(10); {
	case k < 3:
		body = nil
	case k < 5:
		body = randBytes(r, r.IntN(2048))
	case k < 6:
		body = []byte(`{"id":"` + randToken(r, 10) + `","n":` + strconv.Itoa(r.IntN(1e6)) + `,"nested":{"a":[1,2,{"b":null}]}}`)
	case k < 8:
		body = randBytes(r, maxBody-r.IntN(1024)) // near max_body
	case k < 9:
		body = randBytes(r, maxBody+1+r.IntN(4096)) // just over it: 413
	default:
		body = randBytes(r, r.IntN(64))
	}
	if len(body) > 0 && r.IntN(4) == 0 && method != "HEAD" {
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for rest := body; len(rest) > 0; {
			n := min(len(rest), 1+r.IntN(8192))
			b.WriteString(chunk(string(rest[:n])))
			rest = rest[n:]
		}
		b.WriteString("0\r\n\r\n")
	} else {
		b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
		b.Write(body)
	}
	raw = b.Bytes()
	if mutate {
		hdr := bytes.Index(raw, []byte("\r\n\r\n"))
		for i, n := 0, 1+r.IntN(4); i < n; i++ {
			raw[r.IntN(hdr+4)] = byte(r.IntN(256))
		}
	}
	return raw, method, body
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randToken(r *rand.Rand, n int) string {
	const tok = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
	b := make([]byte, n)
	for i := range b {
		b[i] = tok[r.IntN(len(tok))]
	}
	return string(b)
}

func randVisible(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0x21 + r.IntN(0x7e-0x21+1))
	}
	return string(b)
}

// TestHardeningRandomRequests sends a bounded burst (2,000 requests or 20s) of random
// requests, one in ten with bytes flipped in its header, from 8 clients. No answer may be a
// 5xx, the process keeps serving, and every request the upstream answered reached it with
// its body intact.
func TestHardeningRandomRequests(t *testing.T) {
	up := startUpstream(t)
	e := startHard(t, up.URL(), "", "off")
	pub, _ := e.g.Addrs()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("HOOKWALL_HARDENING_SEED"); s != "" {
		seed, _ = strconv.ParseUint(s, 10, 64)
	}
	t.Logf("seed %d (set HOOKWALL_HARDENING_SEED to replay)", seed)
	const maxBody, total, workers = 64 << 10, 2000, 8
	stopAt := time.Now().Add(20 * time.Second)

	type sent struct {
		method string
		body   []byte
		id     string // X-Request-Id of a 200 from the upstream
	}
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		forward  []sent
		next     atomic.Int64
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			var conn net.Conn
			var br *bufio.Reader
			defer func() {
				if conn != nil {
					conn.Close()
				}
			}()
			for next.Add(1) <= total && time.Now().Before(stopAt) {
				mutate := r.IntN(10) == 0
				raw, method, body := randomRequest(r, maxBody, mutate)
				if mutate {
					res := rawExchange(t, nil, pub.String(), raw, true, 5*time.Second)
					if len(res.statuses) > 0 && res.statuses[len(res.statuses)-1] < 0 {
						t.Errorf("unreadable answer %q to %q", res.raw, raw)
					}
					mu.Lock()
					for _, s := range res.statuses {
						statuses[s]++
					}
					if len(res.statuses) == 0 {
						statuses[0]++ // closed without an answer
					}
					mu.Unlock()
					continue
				}
				if conn == nil {
					c, err := net.DialTimeout("tcp", pub.String(), 5*time.Second)
					if err != nil {
						t.Errorf("dial: %v", err)
						return
					}
					conn, br = c, bufio.NewReader(c)
				}
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				_, werr := conn.Write(raw)
				resp, err := http.ReadResponse(br, &http.Request{Method: method})
				for err == nil && resp.StatusCode == http.StatusContinue {
					resp, err = http.ReadResponse(br, &http.Request{Method: method}) // after Expect: 100-continue
				}
				if err != nil {
					if werr == nil {
						t.Errorf("%s request: no answer: %v", method, err)
					}
					conn.Close()
					conn = nil
					continue
				}
				rb, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				mu.Lock()
				statuses[resp.StatusCode]++
				if resp.StatusCode == 200 && (string(rb) == "upstream ok" || method == "HEAD") {
					forward = append(forward, sent{method: method, body: body, id: resp.Header.Get("X-Request-Id")})
				}
				mu.Unlock()
				if resp.Close {
					conn.Close()
					conn = nil
				}
			}
		}()
	}
	wg.Wait()
	n := 0
	for s, c := range statuses {
		n += c
		if s >= 500 || s < 0 {
			t.Errorf("%d answers with status %d", c, s)
		}
	}
	t.Logf("%d requests, statuses %v", n, statuses)
	if n < total/4 {
		t.Fatalf("only %d requests in 20s: the burst did not run", n)
	}
	if len(forward) < n/10 {
		t.Fatalf("only %d of %d requests were forwarded: the burst tested nothing but refusals", len(forward), n)
	}

	// Every forwarded request reached the upstream exactly as sent.
	byID := map[string]recorded{}
	for _, r := range up.requests() {
		byID[r.Header.Get("X-Request-Id")] = r
	}
	for _, f := range forward {
		r, ok := byID[f.id]
		switch {
		case !ok:
			t.Errorf("answered 200 from the upstream, but the upstream has no request %q", f.id)
		case r.Method != f.method:
			t.Errorf("request %s: method %q at the upstream, sent %q", f.id, r.Method, f.method)
		case !bytes.Equal(r.Body, f.body):
			t.Errorf("request %s: body of %d bytes at the upstream, sent %d", f.id, len(r.Body), len(f.body))
		}
	}

	// The process is alive and serving.
	if r := e.do("POST", "/hooks/after", []byte("after"), nil); r.Status != 200 {
		t.Fatalf("after the burst: %d, want 200", r.Status)
	}
	select {
	case err := <-e.done:
		t.Fatalf("the gateway stopped during the burst: %v", err)
	default:
	}
}

const faultConfig = `
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
decisions = "off"

[[route]]
name = "faults"
prefix = "/"
upstream = "{{UPSTREAM}}"
policy = "routes.hard"
timeout = "500ms"
max_response_body = "1MiB"

[[route]]
name = "down"
path = "/down"
upstream = "{{DOWN}}"
policy = "routes.hard"
timeout = "500ms"
`

// TestHardeningUpstreamFaults makes the upstream refuse, stall, hang up mid-answer, answer
// garbage, or answer with a header block or body over the limits. Each gets 502 (504 for the
// stall, at the route timeout) promptly, the gateway reads no more than its limits, and the
// dedupe key is released every time: the provider's retry with the same key is forwarded,
// and only after that delivery is the key a duplicate.
func TestHardeningUpstreamFaults(t *testing.T) {
	fu := startFaultUpstream(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := ln.Addr().String()
	ln.Close() // refused until the retry below listens here
	var down *faultUpstream
	cfg := strings.NewReplacer("{{UPSTREAM}}", fu.URL(), "{{DOWN}}", "http://"+downAddr).Replace(faultConfig)
	e := startEnv(t, cfg, map[string]string{"policies/hard.rego": hardPolicy}, Options{})
	const timeout = 500 * time.Millisecond

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	post := func(path, key string) (int, http.Header, string, time.Duration) {
		t.Helper()
		req, _ := http.NewRequest("POST", e.base+path, strings.NewReader(`{"event":"x"}`))
		req.Header.Set("X-Delivery", key)
		start := time.Now()
		r, err := client.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v (a hung or reset client connection)", path, err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		return r.StatusCode, r.Header, string(b), time.Since(start)
	}

	cases := []struct {
		name, path string
		want       int
		bounded    bool // the upstream streams without end: the gateway must stop reading
	}{
		{"refused", "/down", 502, false},
		{"stall", "/slow", 504, false},
		{"close-mid-body", "/midclose", 502, false},
		{"close-mid-chunks", "/midclose-chunked", 502, false},
		{"close-mid-headers", "/midclose-headers", 502, false},
		{"garbage-answer", "/garbage", 502, false},
		{"huge-headers", "/huge-headers", 502, true},
		{"huge-body", "/huge-body", 502, true},
		{"huge-body-chunked", "/huge-body-chunked", 502, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			key := "key-" + c.name
			fu.written.Store(0)
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			status, _, body, took := post(c.path, key)
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if status != c.want || strings.Contains(body, "127.0.0.1") {
				t.Fatalf("status %d body %q, want %d without the upstream's address", status, body, c.want)
			}
			switch {
			case c.want == 504 && (took < timeout-50*time.Millisecond || took > timeout+700*time.Millisecond):
				t.Errorf("504 after %v, want it at the route timeout %v", took, timeout)
			case c.want == 502 && took > timeout:
				t.Errorf("502 after %v: a broken answer must not wait for the route timeout", took)
			}
			if c.bounded {
				testutil.WaitFor(t, func() bool { return fu.written.Load() > 0 }) // the gateway hung up
				if w := fu.written.Load(); w > 64<<20 {
					t.Errorf("the upstream wrote %d MiB before the gateway hung up; the limit is 1MiB", w>>20)
				}
				if a := after.TotalAlloc - before.TotalAlloc; a > 32<<20 {
					t.Errorf("the gateway allocated %d MiB for one refused answer; the limit is 1MiB", a>>20)
				}
			}

			if c.name == "refused" {
				ln, err := net.Listen("tcp", downAddr)
				if err != nil {
					t.Skipf("cannot listen on %s again for the retry: %v", downAddr, err)
				}
				down = serveFaults(t, ln)
			}
			// The provider retries with the same key: forwarded, not a duplicate, not in flight.
			retryPath := "/ok"
			if c.name == "refused" {
				retryPath = "/down"
			}
			status, h, body, _ := post(retryPath, key)
			if status != 200 || body != "ok" || h.Get("Hookwall-Duplicate") != "" {
				t.Fatalf("retry with the released key: %d %q dup=%q, want the upstream's 200", status, body, h.Get("Hookwall-Duplicate"))
			}
			// Delivered now: the next copy is a duplicate, answered without the upstream.
			status, h, _, _ = post(retryPath, key)
			if status != 200 || h.Get("Hookwall-Duplicate") != "true" {
				t.Fatalf("copy after delivery: %d dup=%q, want a duplicate", status, h.Get("Hookwall-Duplicate"))
			}
		})
	}

	// Big but legal header blocks still pass, and the gateway is healthy after all that.
	if status, _, body, _ := post("/big-headers", "key-big-headers"); status != 200 || body != "ok" {
		t.Fatalf("12KiB answer header block: %d %q, want 200", status, body)
	}
	byKey := map[string]int{}
	reqs := fu.requests()
	if down != nil {
		reqs = append(reqs, down.requests()...)
	}
	for _, r := range reqs {
		byKey[r.Delivery]++
	}
	for _, c := range cases {
		want := 2 // the failed attempt and the retry; the duplicate never reaches the upstream
		if c.name == "refused" {
			want = 1
		}
		if got := byKey["key-"+c.name]; got != want {
			t.Errorf("%s: the upstream saw the key %d times, want %d", c.name, got, want)
		}
	}
}
