package main

import (
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitExit reads the process's log to its end (it exited) and returns it with Wait's error.
func waitExit(t *testing.T, cmd *exec.Cmd, logs <-chan string, within time.Duration) (string, error) {
	t.Helper()
	var all []string
	timeout := time.After(within)
	for open := true; open; {
		select {
		case l, ok := <-logs:
			if open = ok; ok {
				all = append(all, l)
			}
		case <-timeout:
			t.Fatalf("the process did not exit within %v:\n%s", within, strings.Join(all, "\n"))
		}
	}
	return strings.Join(all, "\n"), cmd.Wait()
}

// gatewayWithHeldRequest starts the binary with -drain drain on a GitHub route whose upstream
// holds every request until the test ends, and returns once one request reached it, with the
// process, its log lines and its admin address.
func gatewayWithHeldRequest(t *testing.T, drain string) (*exec.Cmd, <-chan string, string) {
	t.Helper()
	bin := hookwallBinary(t)
	uln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reached := make(chan struct{}, 1)
	release := make(chan struct{})
	usrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached <- struct{}{}
		<-release
	})}
	go usrv.Serve(uln)
	t.Cleanup(func() { usrv.Close() })
	t.Cleanup(func() { close(release) }) // first: the held request ends, then the server

	pub, adm := freePort(t), freePort(t)
	dir := ghGateway{Listen: pub, Admin: adm, Upstream: "http://" + uln.Addr().String()}.tree(t)
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "gateway.toml"), "-drain", drain)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "HW_TEST_SECRET=s3cret")
	logs := startProcess(t, cmd)
	waitReady(t, "http://"+adm+"/readyz")
	go func() {
		r, err := http.DefaultClient.Do(githubWebhook("http://"+pub+"/hooks/github", []byte(`{"in":"flight"}`)))
		if err == nil {
			r.Body.Close()
		}
	}()
	select {
	case <-reached:
	case <-time.After(5 * time.Second):
		t.Fatal("request never reached the upstream")
	}
	return cmd, logs, adm
}

// TestSecondSignalStopsTheDrain: after SIGTERM, /readyz answers 503 "draining" (a load
// balancer stops sending here while the public listener is closed), and a second SIGTERM
// during a 30 s drain stops the process at once, saying so, exit 1: an operator does not
// wait out -drain.
func TestSecondSignalStopsTheDrain(t *testing.T) {
	cmd, logs, adm := gatewayWithHeldRequest(t, "30s")
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	status := 0
	for end := time.Now().Add(5 * time.Second); status != http.StatusServiceUnavailable && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if r, err := http.Get("http://" + adm + "/readyz"); err == nil {
			status = r.StatusCode
			r.Body.Close()
		}
	}
	if status != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the drain: %d, want 503", status)
	}
	sigtermExits1(t, cmd, logs, "second signal: stopping now")
}

// sigtermExits1 sends cmd SIGTERM and wants it to exit 1 within 5 s (its drain, whatever
// -drain said, is over), its log saying says.
func sigtermExits1(t *testing.T, cmd *exec.Cmd, logs <-chan string, says string) {
	t.Helper()
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	out, werr := waitExit(t, cmd, logs, 10*time.Second)
	var exit *exec.ExitError
	if !errors.As(werr, &exit) || exit.ExitCode() != 1 {
		t.Errorf("exit: %v, want exit status 1", werr)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("exited %v after SIGTERM", d)
	}
	if !strings.Contains(out, says) {
		t.Errorf("the exit does not say %q:\n%s", says, out)
	}
}

// TestSIGTERMWhileStarting: a stop asked for while the gateway is still starting (here its
// policy bundle's download) ends it with exit 0, as a stop once up does, not with the
// download's "context canceled" as a failure to start.
func TestSIGTERMWhileStarting(t *testing.T) {
	bin := hookwallBinary(t)
	bln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	asked := make(chan struct{}, 1)
	bsrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	})}
	go bsrv.Serve(bln)
	defer bsrv.Close()
	dir := t.TempDir()
	cfg := "[server]\nlisten = \"" + freePort(t) + "\"\n[admin]\nlisten = \"" + freePort(t) + "\"\n[log]\ndecisions = \"off\"\n" +
		"[policies]\nbundle_url = \"http://" + bln.Addr().String() + "/bundle.tar.gz\"\n\n" +
		"[[route]]\nname = \"a\"\npath = \"/a\"\nupstream = \"http://127.0.0.1:9\"\npolicy = \"routes.a\"\n"
	if err := os.WriteFile(filepath.Join(dir, "gateway.toml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-c", filepath.Join(dir, "gateway.toml"))
	cmd.Dir = dir
	logs := startProcess(t, cmd)
	select {
	case <-asked:
	case <-time.After(10 * time.Second):
		t.Fatal("the gateway never asked for its bundle")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	out, werr := waitExit(t, cmd, logs, 10*time.Second)
	if werr != nil {
		t.Errorf("exit: %v, want 0\n%s", werr, out)
	}
	if !strings.Contains(out, "stopped while starting") || strings.Contains(out, "context canceled") {
		t.Errorf("the log does not say it stopped while starting:\n%s", out)
	}
}
