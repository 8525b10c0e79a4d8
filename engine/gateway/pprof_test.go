package gateway

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// A timed mutex or block profile from the admin listener samples contention for its window
// only: the profile is one, and sampling is off again afterwards, so the request path pays
// nothing for it the rest of the time.
func TestContentionProfilesSampleOnlyWhenAsked(t *testing.T) {
	e, _ := startE2E(t)
	for _, name := range []string{"mutex", "block"} {
		during := make(chan int, 1)
		if name == "mutex" {
			go func() {
				time.Sleep(500 * time.Millisecond) // inside the one-second window
				during <- runtime.SetMutexProfileFraction(-1)
			}()
		}
		r, err := http.Get(e.admin + "/debug/pprof/" + name + "?seconds=1")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(r.Body)
		r.Body.Close()
		if err != nil || r.StatusCode != 200 {
			t.Fatalf("%s: status %d, %v: %s", name, r.StatusCode, err, raw)
		}
		// A profile is a gzipped protocol buffer.
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err == nil {
			_, err = io.ReadAll(zr)
		}
		if err != nil {
			t.Errorf("%s: not a profile: %v: %.200q", name, err, raw)
		}
		if name == "mutex" {
			if f := <-during; f <= 0 {
				t.Errorf("mutex sampling was off during the profile (fraction %d): it would show nothing", f)
			}
		}
	}
	if f := runtime.SetMutexProfileFraction(-1); f != 0 {
		t.Errorf("mutex sampling left on after the profile: fraction %d", f)
	}
}
