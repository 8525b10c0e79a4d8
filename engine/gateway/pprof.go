package gateway

import (
	"net/http"
	"net/http/pprof"
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
		pprof.Handler(r.PathValue("name")).ServeHTTP(w, r)
	}))
}
