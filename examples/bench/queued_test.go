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

// The report's medians: a ratio carries × after the median only, a count or a duration
// none; the range is the lowest and the highest; nothing measured is "n/a".
func TestMedianFormats(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{medianRange([]float64{0.6, 0.4, 0.5}), "0.500× (0.400–0.600)"},
		{medianOf([]float64{30, 10, 20}, "%.0f", ""), "20 (10–30)"},
		{medianOf([]float64{1.25}, "%.1f", ""), "1.2 (1.2–1.2)"},
		{medianRange(nil), "n/a"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
