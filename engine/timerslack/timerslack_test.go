//go:build linux

package timerslack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// atInit is the main thread's slack while the package initialises: the runtime keeps the
// main goroutine on the main thread until main starts, and the monitor thread was cloned
// from it before.
var atInit, _ = current()

const helperEnv = "TIMERSLACK_TEST_HELPER" // the slack, in ns, the helper asks Ensure for

func TestMain(m *testing.M) {
	if v := os.Getenv(helperEnv); v != "" {
		helper(v)
		return
	}
	os.Exit(m.Run())
}

// helper is the process under test: it calls Ensure and reports what it runs with.
func helper(v string) {
	ns, _ := strconv.ParseInt(v, 10, 64)
	err := Ensure(time.Duration(ns))
	_, marked := os.LookupEnv(reexecEnv)
	checked, differ := threads(time.Duration(ns))
	fmt.Printf("pid=%d init=%d marked=%t names=%s threads=%d differ=%d err=%v\n", os.Getpid(), atInit.Nanoseconds(), marked, names(), checked, differ, err)
}

// names lists the distinct names of the process's threads, as ps and top show them.
func names() string {
	seen := map[string]bool{}
	var out []string
	tids, _ := os.ReadDir("/proc/self/task")
	for _, t := range tids {
		b, err := os.ReadFile(filepath.Join("/proc/self/task", t.Name(), "comm"))
		if n := strings.TrimSpace(string(b)); err == nil && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return strings.Join(out, ",")
}

// processName is the name the kernel gave the helper when the test started it: its file's,
// cut to 15 bytes.
func processName() string {
	n := filepath.Base(os.Args[0])
	return n[:min(len(n), 15)]
}

// threads reads every thread's slack from /proc, where it may (reading another thread's
// needs CAP_SYS_NICE): how many it read, and how many of those differ from want.
func threads(want time.Duration) (checked, differ int) {
	tids, _ := os.ReadDir("/proc/self/task")
	for _, t := range tids {
		b, err := os.ReadFile(filepath.Join("/proc", t.Name(), "timerslack_ns"))
		if err != nil {
			continue
		}
		checked++
		if n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); time.Duration(n) != want {
			differ++
		}
	}
	return checked, differ
}

// runHelper starts the test binary as the helper, asking for want, with extra in its
// environment, and returns its report and pid.
func runHelper(t *testing.T, want time.Duration, extra ...string) (report string, pid int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(extra, helperEnv+"="+strconv.FormatInt(want.Nanoseconds(), 10))...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper: %v\n%s", err, out.String())
	}
	return strings.TrimSpace(out.String()), cmd.Process.Pid
}

// own is the slack of the test's threads, which the helper starts with.
func own(t *testing.T) time.Duration {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	had, err := current()
	if err != nil {
		t.Fatal(err)
	}
	return had
}

// A slack no thread of this test has: the helper must execute itself to get it.
func fresh(t *testing.T) time.Duration { return own(t) + 737*time.Microsecond }

func TestEnsureStartsEveryThreadWithTheSlack(t *testing.T) {
	want := fresh(t)
	report, pid := runHelper(t, want)
	// The image that reports started with the slack on its main thread, before the runtime
	// made its other threads: only an exec can do that. It kept the process id and, on every
	// thread, the name (not /proc/self/exe's "exe"), and took the marker out of the
	// environment its own children would get.
	wantPrefix := fmt.Sprintf("pid=%d init=%d marked=false names=%s threads=", pid, want.Nanoseconds(), processName())
	if !strings.HasPrefix(report, wantPrefix) || !strings.HasSuffix(report, "differ=0 err=<nil>") {
		t.Fatalf("helper reported %q, want %q… differ=0 err=<nil>", report, wantPrefix)
	}
	if strings.Contains(report, "threads=0 ") {
		t.Logf("no thread's slack was readable here (CAP_SYS_NICE): checked the main thread's only")
	}
}

func TestEnsureKeepsASlackAlreadyThere(t *testing.T) {
	had := own(t)
	// Asking for less than the process has executes nothing: the image that reports had the
	// test's slack at init, where one executed again would have started with the less.
	report, pid := runHelper(t, had/2)
	if want := fmt.Sprintf("pid=%d init=%d marked=false", pid, had.Nanoseconds()); !strings.HasPrefix(report, want) || !strings.HasSuffix(report, "err=<nil>") {
		t.Fatalf("helper reported %q, want %q… err=<nil>", report, want)
	}
}

func TestEnsureDoesNotExecuteTwice(t *testing.T) {
	// An image that finds the marker and still lacks the slack reports it, without another
	// exec: a kernel that dropped the slack at exec cannot loop the process.
	want := fresh(t)
	report, pid := runHelper(t, want, reexecEnv+"=hookwall-test")
	had := own(t)
	if want := fmt.Sprintf("pid=%d init=%d marked=false names=hookwall-test ", pid, had.Nanoseconds()); !strings.HasPrefix(report, want) || !strings.Contains(report, "the kernel did not keep it") {
		t.Fatalf("helper reported %q, want %q… the kernel did not keep it", report, want)
	}
}

func TestEnsureRefusesNoSlack(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Millisecond} {
		if err := Ensure(d); err == nil {
			t.Errorf("Ensure(%v): no error", d)
		}
	}
}

func TestCurrentReadsWhatWasSet(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	had, err := current()
	if err != nil {
		t.Fatal(err)
	}
	set := had + 123*time.Microsecond
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(set), 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer restore(had)
	if got, err := current(); err != nil || got != set {
		t.Fatalf("current() = %v, %v after setting %v", got, err, set)
	}
}
