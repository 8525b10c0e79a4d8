package gateway

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestWatchLiftBlockAnySpelling: DELETE /-/blocks/{source} lifts the block of an address
// written in another form than the one the block is listed under (here IPv4-mapped and
// upper case, as an operator might paste it).
func TestWatchLiftBlockAnySpelling(t *testing.T) {
	e, _ := startWatchEnv(t, "block = true\nblock_for = \"1m\"\n", nil)
	attacker := sourceClient("127.0.0.2")
	alignToWindow(2 * time.Second)
	for i := 0; i < 10; i++ {
		if r := pushFrom(t, attacker, e.base, true); r.Status != 401 {
			t.Fatalf("forgery %d: %d", i, r.Status)
		}
	}
	if r := pushFrom(t, attacker, e.base, false); r.Status != 429 {
		t.Fatalf("after the burst: %d, want 429", r.Status)
	}
	lift := func(source string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodDelete, e.admin+"/-/blocks/"+source, nil)
		req.Header.Set(AdminHeader, "1")
		r, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		b, _ := io.ReadAll(r.Body)
		return r.StatusCode, string(b)
	}
	if st, body := lift("::FFFF:127.0.0.2"); st != 200 || !strings.Contains(body, `"lifted"`) {
		t.Fatalf("DELETE /-/blocks/::FFFF:127.0.0.2: %d %s, want 200 lifted", st, body)
	}
	if r := pushFrom(t, attacker, e.base, false); r.Status != 200 {
		t.Fatalf("after the lift: %d, want 200", r.Status)
	}
	var blocks struct {
		Blocks []struct{ Source string } `json:"blocks"`
	}
	getJSON(t, e.admin+"/-/blocks", &blocks)
	if len(blocks.Blocks) != 0 {
		t.Fatalf("/-/blocks after the lift: %+v", blocks)
	}
	if st, body := lift("127.0.0.2"); st != 404 {
		t.Fatalf("lifting it again: %d %s, want 404", st, body)
	}
}
