package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// chromium returns the headless browser, or skips (fails when CI is set: .ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is required in CI (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH")
	return ""
}

// runChromium runs headless Chromium on url with extra flags and returns its stdout.
func runChromium(t *testing.T, bin, url string, extra ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir=" + t.TempDir(), "--window-size=1200,900",
		// Lets the page's fetches and first polls complete before the DOM dump or screenshot.
		"--virtual-time-budget=4000",
	}, extra...)
	args = append(args, url)
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", extra, err, errb.String())
	}
	return out.Bytes()
}

func TestStatusPageRendersInChromium(t *testing.T) {
	bin := chromium(t)
	e, _ := startObservability(t)
	knownTraffic(t, e)
	// A path crafted as markup must come out as text, never as an element. The log keeps a
	// routed path canonical (percent-encoded), and a refused one as received: refused here
	// ("..;"), the markup reaches the log raw.
	if st, _ := secRawRequest(t, e, "POST /<b/id=\"injected\">x</b>/..;/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"); st != 400 {
		t.Fatalf("crafted path: %d", st)
	}
	testutil.WaitFor(t, func() bool {
		r, err := http.Get(e.admin + "/-/recent")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		var d struct {
			Decisions []any `json:"decisions"`
			Rates     []any `json:"rates"`
		}
		_ = json.NewDecoder(r.Body).Decode(&d)
		// The chart needs one sampled second; on a loaded machine the first may not be in yet.
		return len(d.Decisions) == 12 && len(d.Rates) > 0
	})
	url := e.admin + "/"

	dom := string(runChromium(t, bin, url, "--dump-dom"))
	rev := e.g.Status().Revision
	for _, want := range []string{
		`<b>obl</b>`, `<b>shadowed</b>`, // routes table
		"routes.strict",  // the shadow policy of a route
		`<b>guard</b>`,   // filters table
		rev,              // revision in the header
		"policy says no", // a decision's reason
		"shadow routes.strict disagrees",
		`class="badge rate_limited"`, `class="badge filtered"`, `class="badge duplicate"`,
		"&lt;b/id=\"injected\"&gt;x&lt;/b&gt;", // the crafted path, as text
		`class="series-allowed"`,               // the chart drew its lines
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if strings.Contains(dom, `<b id="injected"`) {
		t.Error("a request path was rendered as markup")
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	if p := os.Getenv("HOOKWALL_SCREENSHOT"); p != "" {
		shot = p // keep it to look at
	}
	runChromium(t, bin, url, "--screenshot="+shot, "--hide-scrollbars")
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 900 {
		t.Fatalf("screenshot %v, want 1200x900", b)
	}
	// A rendered page has many colours; a blank or error page has a handful.
	colours := map[uint32]bool{}
	for y := 0; y < 900; y += 3 {
		for x := 0; x < 1200; x += 3 {
			r, g, b, _ := img.At(x, y).RGBA()
			colours[r>>8<<16|g>>8<<8|b>>8] = true
		}
	}
	if len(colours) < 50 {
		t.Fatalf("screenshot has %d colours: the page did not render", len(colours))
	}
}
