package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/hookwall/hookwall/engine/internal/testutil"
)

// cdp drives a headless Chromium over its DevTools pipe (--remote-debugging-pipe: it reads
// NUL-terminated JSON commands on fd 3 and answers on fd 4), attached to its one page.
type cdp struct {
	t       *testing.T
	in      io.Writer
	out     *bufio.Reader
	id      int
	session string
}

func startCDP(t *testing.T, bin, url string) *cdp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmdR, cmdW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ansR, ansW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--window-size=1200,900", "--remote-debugging-pipe", url)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	cmd.ExtraFiles = []*os.File{cmdR, ansW} // fd 3, fd 4
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	cmdR.Close()
	ansW.Close()
	t.Cleanup(func() {
		cmdW.Close()
		cancel()
		_ = cmd.Wait()
		ansR.Close()
	})
	c := &cdp{t: t, in: cmdW, out: bufio.NewReader(ansR)}
	var targets struct {
		TargetInfos []struct{ TargetID, Type string } `json:"targetInfos"`
	}
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c.call("Target.getTargets", nil, &targets)
		for _, ti := range targets.TargetInfos {
			if ti.Type == "page" {
				var s struct{ SessionID string }
				c.call("Target.attachToTarget", map[string]any{"targetId": ti.TargetID, "flatten": true}, &s)
				c.session = s.SessionID
				return c
			}
		}
		if time.Now().After(end) {
			t.Fatalf("chromium opened no page\n%s", errb.String())
		}
	}
}

// call sends one command (on the page's session once attached) and decodes its result.
func (c *cdp) call(method string, params any, result any) {
	c.t.Helper()
	c.id++
	msg := map[string]any{"id": c.id, "method": method, "params": params}
	if c.session != "" {
		msg["sessionId"] = c.session
	}
	b, _ := json.Marshal(msg)
	if _, err := c.in.Write(append(b, 0)); err != nil {
		c.t.Fatalf("cdp %s: %v", method, err)
	}
	for {
		raw, err := c.out.ReadBytes(0)
		if err != nil {
			c.t.Fatalf("cdp %s: %v", method, err)
		}
		var ans struct {
			ID     int             `json:"id"`
			Result json.RawMessage `json:"result"`
			Error  *struct{ Message string }
		}
		if json.Unmarshal(raw[:len(raw)-1], &ans) != nil || ans.ID != c.id {
			continue // an event, or another answer
		}
		if ans.Error != nil {
			c.t.Fatalf("cdp %s: %s", method, ans.Error.Message)
		}
		if result != nil {
			if err := json.Unmarshal(ans.Result, result); err != nil {
				c.t.Fatalf("cdp %s: %v", method, err)
			}
		}
		return
	}
}

// eval evaluates a JavaScript expression in the page and returns its value as a string.
func (c *cdp) eval(expr string) string {
	c.t.Helper()
	var r struct {
		Result struct {
			Value any `json:"value"`
		} `json:"result"`
	}
	c.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true, "awaitPromise": true}, &r)
	return fmt.Sprint(r.Result.Value)
}

// The status page lists dead deliveries with a replay button; a click (in a real browser,
// through the page's own script and the admin API's guard) delivers the delivery again.
func TestStatusPageReplaysDeadLetter(t *testing.T) {
	bin := chromium(t)
	up := startUpstream(t)
	var accept atomic.Bool
	up.setHandler(func(ctx *fasthttp.RequestCtx) {
		if !accept.Load() {
			ctx.SetStatusCode(410) // final: dead after one attempt
		}
	})
	e := startQueued(t, up.URL(), 100)
	body := `{"a":"dead letter"}`
	r := e.do("POST", "/hooks/github", []byte(body), signed(body, ""))
	id := r.Header.Get("Hookwall-Delivery-Id")
	if r.Status != 202 || id == "" {
		t.Fatalf("webhook: %d", r.Status)
	}
	testutil.WaitFor(t, func() bool { return strings.Contains(httpGet(t, e.admin+"/-/recent"), `"dead_letters"`) })
	accept.Store(true)

	c := startCDP(t, bin, e.admin+"/")
	button := `document.querySelector('button.replay[data-id="` + id + `"]')`
	for end := time.Now().Add(20 * time.Second); c.eval(button+` !== null`) != "true"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no replay button for %s: %s", id, c.eval(`document.getElementById("dead").outerHTML`))
		}
	}
	if row := c.eval(button + `.closest("tr").textContent`); !strings.Contains(row, id) || !strings.Contains(row, "upstream answered 410") {
		t.Fatalf("dead-letter row: %q", row)
	}
	c.eval(button + `.click(), true`)
	testutil.WaitFor(t, func() bool { return len(decisionLines(t, e, "delivered")) == 1 })
	if got := decisionLines(t, e, "delivered")[0]; got["delivery_id"] != id || got["attempts"] != float64(2) {
		t.Fatalf("delivered line: %v", got)
	}
	if text := c.eval(`document.querySelector('button.replay[data-id="` + id + `"]')?.textContent ?? "gone"`); text != "replayed" && text != "gone" {
		t.Fatalf("the button says %q after the replay", text)
	}
}
