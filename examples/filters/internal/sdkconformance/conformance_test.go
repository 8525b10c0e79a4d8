package main

import (
	"bytes"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hookwall/hookwall/examples/filters/internal/filtertest"
	"github.com/hookwall/hookwall/sdk"
	"github.com/hookwall/hookwall/sdk/sdktest"
)

// wasmPath is this package built for wasip1 by TestMain.
var wasmPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "sdkconformance")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	wasmPath = filepath.Join(dir, "sdkconformance.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-buildmode=c-shared", "-o", wasmPath, ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the conformance guest: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testConfig = "conformance-config"

func both(t *testing.T) map[string]filtertest.Runner {
	t.Helper()
	native, err := sdktest.New(testConfig)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]filtertest.Runner{
		"harness": native,
		"wasm":    filtertest.Load(t, filtertest.NewHost(t), wasmPath, testConfig),
	}
}

func crc(b []byte) string { return strconv.FormatUint(uint64(crc32.ChecksumIEEE(b)), 16) }

// TestConformance runs each case against the harness and the wasm build;
// both must produce what the case expects.
func TestConformance(t *testing.T) {
	long := strings.Repeat("L", 6000)          // beyond the 512-byte initial scratch
	body := bytes.Repeat([]byte("b"), 100_003) // many read_body rounds
	for name, f := range both(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("read", func(t *testing.T) {
				req := sdktest.NewRequest("PATCH", "/hooks/x?a=1&b=2", body).
					WithHeader("X-Case", "read").
					WithHeader("X-Multi", "one").
					WithHeader("X-Multi", "two").
					WithHeader("X-Long", long)
				req.SourceAddr = "192.0.2.7:4567"
				req.Route = "conformance"
				res := do(t, f, req)
				want := map[string]string{
					"method": "PATCH", "uri": "/hooks/x?a=1&b=2", "proto": "HTTP/1.1", "source": "192.0.2.7:4567",
					"route": "conformance", "config": testConfig, "config_call": testConfig,
					"first": "one", "values": "one|two", "missing": "0", "has_names": "true",
					"long":       "6000:" + crc([]byte(long)),
					"body":       "100003:" + crc(body),
					"body_again": "100003", "status": "200",
				}
				checkLabels(t, res, want)
				if !res.Next || !bytes.Equal(res.Forwarded.Body, body) {
					t.Error("reading changed the forwarded request")
				}
			})
			// The request as the gateway reads it: repeated Cookie lines are one value
			// (ABI.md, get_header_values), an added cookie joins it, and a request with a
			// body has the Content-Length received, which a body write does not change.
			t.Run("cookie", func(t *testing.T) {
				req := sdktest.NewRequest("POST", "/", []byte("hello")).WithHeader("X-Case", "cookie").
					WithHeader("Cookie", "a=1").WithHeader("Cookie", "b=2;c=3")
				res := do(t, f, req)
				checkLabels(t, res, map[string]string{
					"cookies": "a=1; b=2; c=3", "cookie_first": "a=1; b=2; c=3",
					"cookies_added":  "a=1; b=2; c=3; d=4",
					"content_length": "5", "content_length_after": "5",
				})
				fw := res.Forwarded
				if got := strings.Join(fw.Header.Values("Cookie"), "|"); got != "a=1; b=2; c=3; d=4" {
					t.Errorf("forwarded Cookie %q", got)
				}
				if got := strings.Join(fw.Header.Values("Content-Length"), "|"); got != "17" {
					t.Errorf("forwarded Content-Length %q, want the forwarded body's 17", got)
				}
				res = do(t, f, sdktest.NewRequest("GET", "/", nil).WithHeader("X-Case", "cookie"))
				checkLabels(t, res, map[string]string{"cookies": "", "content_length": ""})
			})
			t.Run("mutate", func(t *testing.T) {
				req := sdktest.NewRequest("POST", "/orig", []byte("orig")).
					WithHeader("X-Case", "mutate").WithHeader("X-Drop", "d").WithHeader("X-Set", "old")
				res := do(t, f, req)
				fw := res.Forwarded
				if fw.Method != "PUT" || fw.URI != "/changed?q=1" || string(fw.Body) != "first,second" ||
					fw.Header.Has("X-Drop") || fw.Header.Get("X-Set") != "new" ||
					strings.Join(fw.Header.Values("X-Add"), ",") != "a1,a2" {
					t.Errorf("forwarded %s %s %q drop=%v set=%q add=%q", fw.Method, fw.URI, fw.Body,
						fw.Header.Has("X-Drop"), fw.Header.Get("X-Set"), fw.Header.Values("X-Add"))
				}
				checkLabels(t, res, map[string]string{"body_after": "first,second"})
			})
			t.Run("inplace", func(t *testing.T) {
				res := do(t, f, sdktest.NewRequest("POST", "/", []byte("original body")).WithHeader("X-Case", "inplace"))
				if string(res.Forwarded.Body) != "EDITEDal body" {
					t.Errorf("forwarded %q", res.Forwarded.Body)
				}
			})
			t.Run("stream", func(t *testing.T) {
				res := do(t, f, sdktest.NewRequest("POST", "/", make([]byte, 1234)).WithHeader("X-Case", "stream"))
				checkLabels(t, res, map[string]string{"streamed": "500", "rest": "734", "after": "0:true"})
				if len(res.Forwarded.Body) != 1234 {
					t.Errorf("streaming consumed the forwarded body: %d bytes left", len(res.Forwarded.Body))
				}
			})
			t.Run("deny", func(t *testing.T) {
				res := do(t, f, sdktest.NewRequest("POST", "/", nil).WithHeader("X-Case", "deny"))
				r := res.Response
				if res.Next || r.Status != 418 || string(r.Body) != "teapot" ||
					r.Header.Get("Content-Type") != "text/plain; charset=utf-8" || res.Labels["denied"] != "yes" {
					t.Errorf("deny: next=%v %d %q %q labels=%v", res.Next, r.Status, r.Header.Get("Content-Type"), r.Body, res.Labels)
				}
			})
			t.Run("respond", func(t *testing.T) {
				res := do(t, f, sdktest.NewRequest("POST", "/", nil).WithHeader("X-Case", "respond"))
				r := res.Response
				if res.Next || r.Status != 202 || string(r.Body) != "made here" ||
					strings.Join(r.Header.Values("X-Made"), ",") != "guest,twice" {
					t.Errorf("respond: next=%v %d %q %q", res.Next, r.Status, r.Body, r.Header.Values("X-Made"))
				}
			})
			t.Run("log", func(t *testing.T) {
				res := do(t, f, sdktest.NewRequest("POST", "/", nil).WithHeader("X-Case", "log"))
				if len(res.Logs) != 1 || res.Logs[0] != (sdktest.LogEntry{Level: sdk.LevelWarn, Msg: "warned"}) {
					t.Errorf("logs = %v", res.Logs)
				}
			})
			t.Run("response", func(t *testing.T) {
				up := &sdktest.Response{Status: 201, Body: []byte("upstream body")}
				up.Header.Set("X-Up", "u")
				res, err := f.RoundTrip(sdktest.NewRequest("POST", "/", nil).WithHeader("X-Case", "response"), up, true)
				if err != nil {
					t.Fatal(err)
				}
				r := res.Response
				if r.Status != 202 || string(r.Body) != "UPSTREAM BODY" || r.Header.Get("X-Upstream-Was") != "u" ||
					r.Header.Has("X-Up") || r.Header.Get("X-Is-Error") != "true" {
					t.Errorf("response phase: %d %q was=%q up=%v err=%q", r.Status, r.Body,
						r.Header.Get("X-Upstream-Was"), r.Header.Has("X-Up"), r.Header.Get("X-Is-Error"))
				}
			})
			// Faults: both backends refuse them and keep working.
			for _, c := range []string{"panic", "badheader", "badstatus"} {
				t.Run(c, func(t *testing.T) {
					if _, err := f.Do(sdktest.NewRequest("POST", "/", nil).WithHeader("X-Case", c)); err == nil {
						t.Errorf("case %s did not fail", c)
					}
					if res := do(t, f, sdktest.NewRequest("POST", "/", nil).WithHeader("X-Case", "none")); !res.Next {
						t.Error("the filter does not work after a fault")
					}
				})
			}
		})
	}
}

// TestWasmAllocations measures, inside the wasm guest, the heap
// allocations of one request through the SDK with a 4 KiB body, a header
// read and a label: the SDK reuses its buffers, so only the strings a guest
// asks for (and what strconv and the host glue make) allocate.
func TestWasmAllocations(t *testing.T) {
	f := filtertest.Load(t, filtertest.NewHost(t), wasmPath, testConfig)
	var last int
	for i := range 20 {
		res := do(t, f, sdktest.NewRequest("POST", "/", make([]byte, 4096)).WithHeader("X-Case", "allocs"))
		if i == 0 {
			continue
		}
		n, err := strconv.Atoi(res.Labels["mallocs"])
		if err != nil {
			t.Fatalf("request %d: mallocs label %q", i, res.Labels["mallocs"])
		}
		last = n
	}
	// The steady state: the X-Case string and the label's number.
	const budget = 4
	t.Logf("heap allocations per request in the guest: %d", last)
	if last > budget {
		t.Errorf("%d allocations per request, budget %d", last, budget)
	}
}

// TestWasmConfigRejectedAtLoad: an error from sdk.Configure fails the
// instantiation, so the gateway refuses the filter at load.
func TestWasmConfigRejectedAtLoad(t *testing.T) {
	_, err := filtertest.TryLoad(filtertest.NewHost(t), wasmPath, "reject")
	if err == nil || !strings.Contains(err.Error(), `sdkconformance: config "reject" rejected`) {
		t.Fatalf("load with a rejected config: %v", err)
	}
	if _, err := sdktest.New("reject"); err == nil {
		t.Fatal("the harness accepted the config the guest rejects")
	}
}

func do(t *testing.T, f filtertest.Runner, req *sdktest.Request) *sdktest.Result {
	t.Helper()
	res, err := f.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func checkLabels(t *testing.T, res *sdktest.Result, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got, ok := res.Labels[k]; !ok || got != v {
			t.Errorf("label %s = %.40q (set %v), want %.40q", k, got, ok, v)
		}
	}
}
