package gateway

import (
	"net/http"
	"net/http/pprof"
	"runtime"
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
			defer sampleContention(name)()
		}
		pprof.Handler(name).ServeHTTP(w, r)
	}))
}

// sampleContention turns the runtime's mutex or block sampling on for one timed profile
// (/debug/pprof/mutex?seconds=N): it costs the hot path nothing the rest of the time. The
// returned function turns it off again.
func sampleContention(name string) (stop func()) {
	switch name {
	case "mutex":
		prev := runtime.SetMutexProfileFraction(contentionFraction)
		return func() { runtime.SetMutexProfileFraction(prev) }
	case "block":
		runtime.SetBlockProfileRate(blockRateNanos)
		return func() { runtime.SetBlockProfileRate(0) }
	}
	return func() {}
}

const (
	contentionFraction = 5     // one mutex contention event in 5 sampled
	blockRateNanos     = 10000 // one blocking event per 10 µs blocked, on average
)
