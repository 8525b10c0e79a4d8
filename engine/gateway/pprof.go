package gateway

import (
	"net/http"
	"net/http/pprof"
)

// mountPprof serves Go's profiler on the admin listener, behind the admin token: operators
// profile a live gateway (CPU, heap, goroutines) the same way the README's performance
// figures were found. The handlers expose code paths and counts, never request data.
func (a *admin) mountPprof() {
	a.mux.HandleFunc("GET /debug/pprof/", a.auth(pprof.Index))
	a.mux.HandleFunc("GET /debug/pprof/cmdline", a.auth(pprof.Cmdline))
	a.mux.HandleFunc("GET /debug/pprof/profile", a.auth(pprof.Profile))
	a.mux.HandleFunc("GET /debug/pprof/symbol", a.auth(pprof.Symbol))
	a.mux.HandleFunc("GET /debug/pprof/trace", a.auth(pprof.Trace))
	a.mux.Handle("GET /debug/pprof/{name}", a.auth(func(w http.ResponseWriter, r *http.Request) {
		pprof.Handler(r.PathValue("name")).ServeHTTP(w, r)
	}))
}
