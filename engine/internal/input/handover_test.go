package input

import (
	"bufio"
	"strconv"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func readRequest(t *testing.T, raw string) *fasthttp.Request {
	t.Helper()
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	return &req
}

// handoverRequest is a request with a JSON body, a query, a repeated header and enough
// names that the capture indexes them; tag makes every value differ between two of them.
func handoverRequest(t *testing.T, tag string) *fasthttp.Request {
	t.Helper()
	body := `{"delivery":"` + tag + `","n":[1,2,3]}`
	var b strings.Builder
	b.WriteString("POST /hooks/a?x=" + tag + "&x=2 HTTP/1.1\r\nHost: gw-" + tag + "\r\nContent-Type: application/json\r\n")
	for i := range linearHeaders + 4 {
		b.WriteString("X-Name-" + strconv.Itoa(i) + ": " + tag + "\r\n")
	}
	b.WriteString("X-Dup: " + tag + "\r\nX-Dup: again-" + tag + "\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	return readRequest(t, b.String())
}

// TestHandoverOwnsItsData: a handed-over capture still gives its request's object, headers
// and fields after its Builder captured and built another request (the server's next request
// on a pooled exchange), whether the request path had built the object or parsed the body
// before the handover or not.
func TestHandoverOwnsItsData(t *testing.T) {
	first, second := handoverRequest(t, "first-delivery"), handoverRequest(t, "second-delivery")
	m := fuzzMeta()
	want := Request(first, m)
	for _, built := range []bool{false, true} {
		var bd Builder
		r := bd.Capture(first, m)
		if built {
			r.Object()
		} else {
			r.Header("x-name-0")
		}
		h := r.Handover()
		bd.Reset()
		bd.Capture(second, m).Object()
		if got := h.Object(); got.Compare(want) != 0 {
			t.Fatalf("built=%t: the handed-over object changed with the Builder's next request:\n got %v\nwant %v", built, got, want)
		}
		if v := h.Get("x-name-" + strconv.Itoa(linearHeaders+3)); v != "first-delivery" {
			t.Fatalf("built=%t: indexed header = %q", built, v)
		}
		if v := h.Get("x-dup"); v != "first-delivery, again-first-delivery" {
			t.Fatalf("built=%t: repeated header = %q", built, v)
		}
		if v := h.Text("body"); !strings.Contains(v, "first-delivery") {
			t.Fatalf("built=%t: body = %q", built, v)
		}
	}
}
