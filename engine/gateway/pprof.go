package gateway

import (
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync"
)

// mountPprof serves Go's profiler on the admin listener, behind the admin token: operators
// profile a live gateway (CPU, heap, goroutines) the same way the README's performance
// figures were found. Without a token it is not served (403): the profiles show the command
// line, the code paths and the load, profile and trace cost CPU while they run, and a
// tokenless listener is open to everything on the host.
func (a *admin) mountPprof() {
	if a.token == "" {
		a.mux.HandleFunc("GET /debug/pprof/", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "pprof is served only with [admin] token set"})
		})
		return
	}
	a.mux.HandleFunc("GET /debug/pprof/", a.auth(pprof.Index))
	a.mux.HandleFunc("GET /debug/pprof/cmdline", a.auth(pprof.Cmdline))
	a.mux.HandleFunc("GET /debug/pprof/profile", a.auth(pprof.Profile))
	a.mux.HandleFunc("GET /debug/pprof/symbol", a.auth(pprof.Symbol))
	a.mux.HandleFunc("GET /debug/pprof/trace", a.auth(pprof.Trace))
	a.mux.Handle("GET /debug/pprof/{name}", a.auth(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if r.FormValue("seconds") != "" {
			defer a.contention.sample(name)()
		}
		pprof.Handler(name).ServeHTTP(w, r)
	}))
}

// contention turns the runtime's mutex or block sampling on for timed profiles
// (/debug/pprof/mutex?seconds=N) and off once the last of them ends: it costs the hot path
// nothing the rest of the time. Overlapping profiles share the sampling, counted, so the
// first to end does not cut the other short and the last leaves it as it found it.
type contention struct {
	mu        sync.Mutex
	mutex     int // timed mutex profiles running
	block     int // timed block profiles running
	prevMutex int // the fraction before the first of them
}

// sample starts sampling for one timed profile of name; the returned function ends it.
func (c *contention) sample(name string) (stop func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch name {
	case "mutex":
		if c.mutex == 0 {
			c.prevMutex = runtime.SetMutexProfileFraction(contentionFraction)
		}
		c.mutex++
		return func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.mutex--; c.mutex == 0 {
				runtime.SetMutexProfileFraction(c.prevMutex)
			}
		}
	case "block":
		if c.block == 0 {
			runtime.SetBlockProfileRate(blockRateNanos)
		}
		c.block++
		return func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.block--; c.block == 0 {
				runtime.SetBlockProfileRate(0)
			}
		}
	}
	return func() {}
}

const (
	contentionFraction = 5     // one mutex contention event in 5 sampled
	blockRateNanos     = 10000 // one blocking event per 10 µs blocked, on average
)
