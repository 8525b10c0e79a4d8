package gateway

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/config"
	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// tarBomb returns a gzip'd tar that is small compressed and big decompressed: one valid
// module, then n entries of size zero bytes each, their names nameLen bytes longer than
// "/pad/zeros-N.bin" (PAX headers: OPA's loader keeps every name too).
func tarBomb(t testing.TB, n int, size int64, nameLen int) []byte {
	t.Helper()
	var buf bytes.Buffer
	gw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	tw := tar.NewWriter(gw)
	mod := []byte(flipAllow)
	if err := tw.WriteHeader(&tar.Header{Name: "/routes/flip.rego", Mode: 0o644, Size: int64(len(mod)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(mod); err != nil {
		t.Fatal(err)
	}
	zeros, long := make([]byte, 1<<20), strings.Repeat("a", nameLen)
	for i := range n {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("/pad/zeros-%d%s.bin", i, long), Mode: 0o644, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			t.Fatal(err)
		}
		for left := size; left > 0; {
			k := min(left, int64(len(zeros)))
			if _, err := tw.Write(zeros[:k]); err != nil {
				t.Fatal(err)
			}
			left -= k
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// metaChain returns a gzip'd tar of n GNU long-name headers of a MiB each, one after the
// other, then one module: Go's tar reader consumes the long-name headers without returning
// them as entries, so only the stream's own length can bound them.
func metaChain(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	gw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	header := func(name string, typ byte, size int) []byte {
		b := make([]byte, 512)
		copy(b, name)
		copy(b[100:], "0000644\x00")
		copy(b[108:], "0000000\x00")
		copy(b[116:], "0000000\x00")
		copy(b[124:], fmt.Sprintf("%011o\x00", size))
		copy(b[136:], "00000000000\x00")
		b[156] = typ
		copy(b[257:], "ustar  \x00")
		copy(b[148:], "        ")
		sum := 0
		for _, c := range b {
			sum += int(c)
		}
		copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
		return b
	}
	long := make([]byte, 1<<20)
	copy(long, "routes/flip.rego\x00")
	for range n {
		_, _ = gw.Write(header("././@LongLink", 'L', len(long)))
		_, _ = gw.Write(long)
	}
	mod := []byte(flipAllow)
	_, _ = gw.Write(header("routes/flip.rego", '0', len(mod)))
	_, _ = gw.Write(mod)
	_, _ = gw.Write(make([]byte, (512-len(mod)%512)%512+1024))
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBundleSizeLimitBoundsMemory serves a real gzip'd tar bomb (about half a MiB
// compressed, 540 MiB decompressed, every file under OPA's per-file limit) from a loopback
// HTTP server. Starting a gateway from it must fail with the limit error, naming the URL,
// without allocating anything like the decompressed size; a running gateway polling it keeps
// serving its good bundle; a valid bundle still loads.
func TestBundleSizeLimitBoundsMemory(t *testing.T) {
	const entries, entrySize = 9, 60 << 20 // 540 MiB of zeros
	bomb := tarBomb(t, entries, entrySize, 0)
	t.Logf("bomb: %d bytes compressed, %d MiB decompressed", len(bomb), entries*entrySize>>20)
	if len(bomb) > 4<<20 {
		t.Fatalf("the bomb is %d bytes compressed; it should be small", len(bomb))
	}
	srv := startBundleServer(t, bomb)
	wantLimit := fmt.Sprintf("the %d MiB limit uncompressed", maxBundleBytes>>20)

	// Start-up (and hookwall check, which loads the same way) from the bomb.
	dir := t.TempDir()
	cfg := "[policies]\nbundle_url = \"" + srv.URL() + "\"\n\n[[route]]\nname = \"r\"\npath = \"/r\"\nupstream = \"http://127.0.0.1:1\"\npolicy = \"routes.flip\"\n"
	if err := os.WriteFile(dir+"/gateway.toml", []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := New(context.Background(), dir+"/gateway.toml", Options{Logger: discardLogger()})
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("New: %v", err)
	t.Logf("allocated %.1f MiB while loading the bomb", float64(alloc)/(1<<20))
	if alloc > 48<<20 {
		t.Errorf("loading the bomb allocated %.1f MiB; a bundle must be bounded as a whole", float64(alloc)/(1<<20))
	}
	if err == nil {
		t.Fatal("New loaded the bomb")
	}
	if msg := err.Error(); !strings.Contains(msg, srv.URL()) || !strings.Contains(msg, wantLimit) || !errors.Is(err, errBundleTooLarge) {
		t.Fatalf("New: %q, want the URL %s and %q", msg, srv.URL(), wantLimit)
	}

	// A valid bundle still loads; a bomb polled later does not replace it.
	srv.set(makeBundle(t, flipBundle(flipAllow), nil))
	e := startBundleEnv(t, srv, "", nil)
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Fatalf("status %d: the valid bundle did not load", st)
	}
	good := e.g.Status()
	srv.set(bomb)
	testutil.WaitUntil(t, 5*time.Second, "the bomb was not refused", func() bool { return e.g.Status().Failures > good.Failures })
	doc := e.adminStatus()
	t.Logf("refused: %s", doc.LastError)
	if !strings.Contains(doc.LastError, wantLimit) || doc.Revision != good.Revision || doc.LastResult != "error" {
		t.Errorf("/-/status %+v, want last_error naming %q and the revision unchanged", doc.Status, wantLimit)
	}
	if st := e.mustPost("/hooks/flip"); st != 200 {
		t.Errorf("status %d: the bomb replaced the good bundle", st)
	}
}

// TestBundleLimitTransport checks each limit of bundleLimitTransport with small limits.
func TestBundleLimitTransport(t *testing.T) {
	random := make([]byte, 2<<20) // incompressible
	_, _ = rand.Read(random)
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	_, _ = gw.Write(random)
	_ = gw.Close()
	valid := makeBundle(t, flipBundle(flipAllow), nil)
	cases := []struct {
		name     string
		body     []byte
		chunked  bool // no Content-Length: the body must be cut while read
		want     string
		maxBytes int64
	}{
		{"compressed, Content-Length", gz.Bytes(), false, "exceed the 1 MiB limit", 1 << 20},
		{"compressed, chunked", gz.Bytes(), true, "more than the 1 MiB limit compressed", 1 << 20},
		{"uncompressed", tarBomb(t, 2, 1<<20, 0), false, "more than the 1 MiB limit uncompressed", 1 << 20},
		{"entries", tarBomb(t, 20, 0, 0), false, "more than the limit of 10 entries", 1 << 20},
		{"a long entry name", tarBomb(t, 1, 0, 1<<19), false, "has a name longer than 4096 bytes", 1 << 20},
		{"names count as bytes", tarBomb(t, 9, 0, 4000), false, "more than the 32768-byte limit uncompressed", 32 << 10},
		{"a chain of long-name headers", metaChain(t, 4), false, "its tar stream is longer than the 1 MiB limit", 1 << 20},
		{"valid", valid, true, "", 1 << 20},
		{"not gzip, left to OPA", []byte("not a bundle"), false, "", 1 << 20},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if !tc.chunked {
					w.Header().Set("Content-Length", fmt.Sprint(len(tc.body)))
				}
				_, _ = w.Write(tc.body)
				if tc.chunked {
					w.(http.Flusher).Flush()
				}
			}))
			defer srv.Close()
			hc := &http.Client{Transport: &bundleLimitTransport{base: http.DefaultTransport.(*http.Transport).Clone(), maxBytes: tc.maxBytes, maxEntries: 10}}
			defer hc.CloseIdleConnections()
			resp, err := hc.Get(srv.URL + "/b.tar.gz")
			if tc.want != "" {
				if err == nil {
					resp.Body.Close()
					t.Fatal("no error")
				}
				if !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errBundleTooLarge) {
					t.Fatalf("error %q, want %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(got, tc.body) {
				t.Fatalf("body changed (%d of %d bytes): %v", len(got), len(tc.body), err)
			}
		})
	}
}

// TestBundleErrorBodyBounded: of an answer other than 200 the gateway reads at most
// maxBundleErrorBody bytes and closes the connection, so a bundle server that answers 500 with
// an endless body fails the fetch at once, not after bundleFetchTimeout with all of it read.
func TestBundleErrorBodyBounded(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		buf := bytes.Repeat([]byte("e"), 1<<20)
		for i := 0; i < 1024 && r.Context().Err() == nil; i++ { // 1 GiB at most
			n, err := w.Write(buf)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	p := filepath.Join(dir, "gateway.toml")
	testutil.WriteFile(t, p, "[policies]\nbundle_url = \""+srv.URL+"/b.tar.gz\"\n\n[[route]]\nname = \"x\"\npath = \"/x\"\nupstream = \"http://127.0.0.1:1\"\npolicy = \"routes.x\"\n")
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newBundleSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	start := time.Now()
	_, err = s.fetch(context.Background())
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "server answered 500") {
		t.Errorf("fetch: %v, want the 500 named", err)
	}
	// What the server could write: the bound read, and what the sockets' buffers held.
	if n := sent.Load(); n > 32<<20 || took > 10*time.Second {
		t.Errorf("the fetch of a 500 took %v, and the server wrote %d MiB of its body before the connection closed", took.Round(time.Millisecond), n>>20)
	}
}
