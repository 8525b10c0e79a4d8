package gateway

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// The policies of the settle tests. The old one wants x-token; the new one, written in place
// in chunks, wants x-api-key; its first chunk alone is valid Rego that allows everything.
const (
	settleOld    = "package routes.flip\n\nallow if true\n\ndeny contains \"missing x-token\" if not input.request.headers[\"x-token\"]\n"
	settleChunk1 = "package routes.flip\n\nallow if true\n"
	settleLast   = "deny contains \"missing x-api-key\" if not input.request.headers[\"x-api-key\"]\n"
)

// settleVerdict sends the three probes and says which policy judged them: "old", "new",
// "truncated" (everything allowed) or "other".
func settleVerdict(e *env) string {
	e.t.Helper()
	none := e.do("POST", "/hooks/flip", nil, nil).Status
	token := e.do("POST", "/hooks/flip", nil, map[string]string{"X-Token": "t"}).Status
	key := e.do("POST", "/hooks/flip", nil, map[string]string{"X-Api-Key": "k"}).Status
	switch {
	case none != 200 && token == 200 && key != 200:
		return "old"
	case none != 200 && token != 200 && key == 200:
		return "new"
	case none == 200 && token == 200 && key == 200:
		return "truncated"
	}
	return "other"
}

// writeInPlace truncates path and writes chunks into the same open file, pausing between
// them, as scp, rsync --inplace or `cat >` do. during runs in each pause.
func writeInPlace(t *testing.T, path string, pause time.Duration, during func(), chunks ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i, c := range chunks {
		if i > 0 {
			end := time.Now().Add(pause)
			for time.Now().Before(end) {
				during()
				time.Sleep(10 * time.Millisecond)
			}
		}
		if _, err := f.WriteString(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWatchWaitsForAnInPlaceWriteToSettle: a policy rewritten in place in two chunks 0.4 s
// apart (shorter than the debounce and settle interval) is never served half written: during
// the pause the old complete policy judges every request, and the new one once it is whole.
func TestWatchWaitsForAnInPlaceWriteToSettle(t *testing.T) {
	e, _ := startReload(t, "", "", map[string]string{"policies/routes/flip.rego": settleOld}, Options{})
	if v := settleVerdict(e); v != "old" {
		t.Fatalf("before the write: %s policy", v)
	}
	before := e.g.Status().Reloads
	probes := 0
	writeInPlace(t, e.path("policies/routes/flip.rego"), 400*time.Millisecond, func() {
		probes++
		if v := settleVerdict(e); v != "old" {
			t.Fatalf("probe %d, %d reloads, during the pause between the chunks: the %s policy judged, want the old one",
				probes, e.g.Status().Reloads-before, v)
		}
	}, settleChunk1, settleLast)
	if n := e.g.Status().Reloads - before; n != 0 {
		t.Fatalf("%d reloads during the write", n)
	}
	took := testutil.WaitUntil(t, 4*time.Second, "the completed policy never went live", func() bool { return settleVerdict(e) == "new" })
	t.Logf("%d probes during the pause judged by the old policy; new policy live %v after the last chunk", probes, took)
	if n := e.g.Status().Reloads - before; n != 1 {
		t.Errorf("%d reloads, want 1", n)
	}
}

// TestWatchDoesNotReloadWhileWritesContinue: a file written in place in chunks for longer
// than watchMaxDelay is not reloaded until the writes stop; a warning says once why the
// reload waits.
func TestWatchDoesNotReloadWhileWritesContinue(t *testing.T) {
	e, _ := startReload(t, "", "", map[string]string{"policies/routes/flip.rego": settleOld}, Options{})
	before := e.g.Status().Reloads
	pause := 400 * time.Millisecond
	chunks := []string{settleChunk1, "# 1\n", "# 2\n", "# 3\n", "# 4\n", "# 5\n", settleLast}
	start := time.Now()
	writeInPlace(t, e.path("policies/routes/flip.rego"), pause, func() {
		if v := settleVerdict(e); v != "old" {
			t.Fatalf("%v into the write: the %s policy judged, want the old one", time.Since(start).Round(time.Millisecond), v)
		}
	}, chunks...)
	if took := time.Since(start); took < 2*watchMaxDelay {
		t.Fatalf("the write took %v, want more than twice watchMaxDelay", took)
	}
	testutil.WaitUntil(t, 4*time.Second, "the completed policy never went live", func() bool { return settleVerdict(e) == "new" })
	if n := e.g.Status().Reloads - before; n != 1 {
		t.Errorf("%d reloads, want 1", n)
	}
	if n := strings.Count(e.logBuf.String(), "keep changing"); n != 1 {
		t.Errorf("%d warnings that the files keep changing, want 1; log:\n%s", n, e.logBuf.String())
	}
}
