package main

import (
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
)

// A status page whose store did not answer in time (a line without a route) is asked again,
// not read as a store holding nothing: that misreading ended a drain before it began.
func TestStatusDepthAsksAgainWhenTheStoreDidNotAnswer(t *testing.T) {
	var served atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/-/recent" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		if served.Add(1) <= 2 {
			_, _ = w.Write([]byte(`{"deliveries":[{"route":""}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"deliveries":[{"route":"other","pending":1},{"route":"q","pending":7,"delivered":3,"dead":1}]}`))
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	d, err := statusDepth(adminAPI{addr: ln.Addr().String(), token: "tok"}, "q")
	if err != nil {
		t.Fatal(err)
	}
	if d.Pending != 7 || d.Delivered != 3 || d.Dead != 1 || d.rows() != 11 {
		t.Errorf("depth %+v, want pending 7, delivered 3, dead 1", d)
	}
	if n := served.Load(); n != 3 {
		t.Errorf("the page was read %d times, want 3 (two without the store's answer)", n)
	}
	if _, err := statusDepth(adminAPI{addr: ln.Addr().String()}, "q"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("a refused page: %v, want its status", err)
	}
}
