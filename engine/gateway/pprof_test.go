package gateway

import (
	"bytes"
	"compress/gzip"
	"io"
	"runtime"
	"testing"
	"time"
)

// A timed mutex or block profile from the admin listener samples contention for its window
// only: the profile is one, sampling was on during the window, and it is off again after,
// so the request path pays nothing for it the rest of the time.
func TestContentionProfilesSampleOnlyWhenAsked(t *testing.T) {
	e := startAdminEnv(t, startUpstream(t).URL(), `token = "contention-token"`)
	auth := map[string]string{"Authorization": "Bearer contention-token"}
	for _, name := range []string{"mutex", "block"} {
		during := make(chan int, 1)
		if name == "mutex" {
			go func() {
				time.Sleep(500 * time.Millisecond) // inside the one-second window
				during <- runtime.SetMutexProfileFraction(-1)
			}()
		}
		st, body := adminDo(t, e, "GET", "/debug/pprof/"+name+"?seconds=1", "", auth, "")
		if st != 200 {
			t.Fatalf("%s: status %d: %.200q", name, st, body)
		}
		// A profile is a gzipped protocol buffer.
		zr, err := gzip.NewReader(bytes.NewReader([]byte(body)))
		if err == nil {
			_, err = io.ReadAll(zr)
		}
		if err != nil {
			t.Errorf("%s: not a profile: %v: %.200q", name, err, body)
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

// Overlapping timed contention profiles share the sampling: the first to end leaves it on
// for the other, and the last turns it off, as it found it.
func TestOverlappingContentionProfiles(t *testing.T) {
	var c contention
	before := runtime.SetMutexProfileFraction(-1)
	stopA, stopB := c.sample("mutex"), c.sample("mutex")
	stopA()
	if f := runtime.SetMutexProfileFraction(-1); f != contentionFraction {
		t.Errorf("the first of two mutex profiles ended and sampling is at %d, want %d for the other", f, contentionFraction)
	}
	stopB()
	if f := runtime.SetMutexProfileFraction(-1); f != before {
		runtime.SetMutexProfileFraction(before)
		t.Errorf("after two overlapping mutex profiles the fraction is %d, want %d (as before)", f, before)
	}
}
