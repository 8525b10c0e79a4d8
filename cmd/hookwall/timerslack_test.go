//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunStartsWithTheTimerSlack runs the real binary and reads the timer slack of every one
// of its threads from /proc. The Go runtime's monitor thread is made before main runs, from
// the main thread: it has the [server] timer_slack only if the gateway started itself again
// with it, in the process the test started, and under its own name.
func TestRunStartsWithTheTimerSlack(t *testing.T) {
	bin := hookwallBinary(t)
	if _, err := os.ReadFile("/proc/1/timerslack_ns"); err != nil {
		// Reading another process's slack takes CAP_SYS_NICE; CI runs as root.
		if os.Getenv("CI") != "" {
			t.Fatalf("CI cannot read a process's timer slack: %v", err)
		}
		t.Skipf("cannot read another process's timer slack here (CAP_SYS_NICE): %v", err)
	}
	own := slackOf(t, strconv.Itoa(os.Getpid())) // what the test's threads pass on
	for _, tc := range []struct {
		name, keys string
		want       time.Duration
	}{
		{"default", "", time.Millisecond},
		{"set", `timer_slack = "300us"`, 300 * time.Microsecond},
		{"off", `timer_slack = "0"`, own},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pub, adm := freePort(t), freePort(t)
			dir := ghGateway{Listen: pub, Admin: adm, ServerKeys: tc.keys, Upstream: "http://127.0.0.1:1"}.tree(t)
			cmd, logs := startHookwall(t, bin, dir, adm, "HW_TEST_SECRET=s3cret")
			pid := cmd.Process.Pid
			// Its standard error, a pipe it was started with, still reaches the test.
			if !waitLine(logs, "hookwall is serving", 10*time.Second) {
				t.Fatal("no \"hookwall is serving\" line on the gateway's standard error")
			}
			tids, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
			if err != nil {
				t.Fatal(err)
			}
			if len(tids) < 2 {
				t.Fatalf("the gateway runs %d threads: no monitor thread to check", len(tids))
			}
			for _, tid := range tids {
				if got := slackOf(t, tid.Name()); got != tc.want {
					t.Errorf("thread %s of the gateway (pid %d): timer slack %v, want %v", tid.Name(), pid, got, tc.want)
				}
				// Executed again through /proc/self/exe, it still goes by its name for ps,
				// top and pkill.
				if b, err := os.ReadFile("/proc/" + tid.Name() + "/comm"); err != nil || strings.TrimSpace(string(b)) != filepath.Base(bin) {
					t.Errorf("thread %s of the gateway: named %q (%v), want %q", tid.Name(), strings.TrimSpace(string(b)), err, filepath.Base(bin))
				}
			}
		})
	}
}

// slackOf reads a thread's timer slack from /proc.
func slackOf(t *testing.T, tid string) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + tid + "/timerslack_ns")
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("/proc/%s/timerslack_ns: %v", tid, err)
	}
	return time.Duration(n)
}
