package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDecisionLogReaderGoneKeepsServing: with [log] decisions = "stdout" piped to a reader
// (a log shipper), the reader exiting does not end the gateway: Go ends a process whose write
// to fd 1 or 2 meets a closed pipe, unless it ignores SIGPIPE. The real binary keeps
// answering, and counts the records it could not write.
func TestDecisionLogReaderGoneKeepsServing(t *testing.T) {
	bin := hookwallBinary(t)
	up := &http.Server{Handler: http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})}
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go up.Serve(uln)
	t.Cleanup(func() { up.Close() })
	pub, adm := freePort(t), freePort(t)
	dir := ghGateway{Listen: pub, Admin: adm, Upstream: "http://" + uln.Addr().String()}.tree(t)
	cfgPath := filepath.Join(dir, "gateway.toml")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(string(raw), `decisions = "off"`, `decisions = "stdout"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", cfgPath)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "HW_TEST_SECRET=s3cret")
	cmd.Stdout = w
	startProcess(t, cmd)
	w.Close() // the child holds the write end
	waitReady(t, "http://"+adm+"/readyz")
	send := func(i int) int {
		t.Helper()
		resp, err := http.DefaultClient.Do(githubWebhook("http://"+pub+"/hooks/github", []byte(fmt.Sprintf(`{"n":%d}`, i))))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := send(0); st != 200 {
		t.Fatalf("first request: %d", st)
	}
	if line, err := bufio.NewReader(r).ReadString('\n'); err != nil || !strings.Contains(line, `"decision_id"`) {
		t.Fatalf("the first record on stdout: %q %v", line, err)
	}
	r.Close() // the shipper exits
	for i := 1; i <= 3; i++ {
		if st := send(i); st != 200 {
			t.Fatalf("request %d after the reader left: %d", i, st)
		}
		time.Sleep(300 * time.Millisecond) // past the log's flush interval: a write meets the closed pipe
	}
	if st := send(4); st != 200 {
		t.Fatalf("the gateway stopped answering after its log's reader left: %d", st)
	}
	metrics := httpBody(t, "http://"+adm+"/metrics")
	if !strings.Contains(metrics, "hookwall_decision_log_write_errors_total ") || strings.Contains(metrics, "hookwall_decision_log_write_errors_total 0\n") {
		t.Errorf("the failed writes are not counted:\n%s", grepLines(metrics, "decision_log"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
