package timerslack

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// current returns the calling thread's timer slack; the caller keeps to its thread.
func current() (time.Duration, error) {
	ns, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("timerslack: reading the timer slack: %w", err)
	}
	return time.Duration(ns), nil
}

// Ensure makes the process run with a timer slack of at least want. When every thread
// already has it (the process was started with it, by its parent or by an earlier Ensure),
// it returns nil. Otherwise it sets want on the calling thread and replaces the process
// image with the same binary, arguments and environment: on success it does not return,
// and the program starts again from main. Call it before the program opens a file or a
// listener it does not mean to pass on (Go opens its own close-on-exec) and before it does
// anything it would not do twice.
//
// It returns an error, and the process goes on with the slack it has, when want is not
// positive, when the kernel refuses or ignores the slack (a real-time thread has none),
// when the binary cannot be executed again, or when the image it started has less than
// want: then the kernel did not keep the slack across exec, and Ensure does not try twice.
func Ensure(want time.Duration) error {
	if want <= 0 {
		return fmt.Errorf("timerslack: a slack of %v: want more than zero", want)
	}
	name, again := os.LookupEnv(reexecEnv)
	if again {
		_ = os.Unsetenv(reexecEnv) // not for the program's children
		rename(name)
	}
	// The slack to compare is the one every thread started with: the calling thread's
	// is that one until something sets it, and only Ensure does here.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	had, err := current()
	if err != nil {
		return err
	}
	if had >= want {
		return nil
	}
	if again {
		return fmt.Errorf("timerslack: the process was executed again with a slack of %v and runs with %v: the kernel did not keep it", want, had)
	}
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(want), 0, 0, 0); err != nil {
		return fmt.Errorf("timerslack: setting a slack of %v: %w", want, err)
	}
	if got, err := current(); err != nil || got != want {
		restore(had)
		if err == nil {
			err = fmt.Errorf("timerslack: the kernel keeps %v, not %v (a real-time thread has no slack)", got, want)
		}
		return err
	}
	// /proc/self/exe names the running binary even when its file was replaced or removed
	// since it started. Without /proc the exec fails and the process goes on as it is
	// (os.Executable reads the same link).
	const exe = "/proc/self/exe"
	// The kernel names the new image after the file it executes, "exe": the marker carries
	// the name ps, top and pkill know the process by, for the image to take back.
	b, _ := os.ReadFile("/proc/self/comm")
	err = syscall.Exec(exe, os.Args, append(os.Environ(), reexecEnv+"="+strings.TrimSpace(string(b))))
	restore(had)
	return fmt.Errorf("timerslack: executing %s again with a slack of %v: %w", exe, want, err)
}

// rename gives every thread the name the process had before Ensure executed it again. The
// runtime makes threads from threads, so the loop runs twice for one made during the first.
func rename(name string) {
	if name == "" {
		return
	}
	for range 2 {
		tids, _ := os.ReadDir("/proc/self/task")
		for _, t := range tids {
			f, err := os.OpenFile(filepath.Join("/proc/self/task", t.Name(), "comm"), os.O_WRONLY, 0)
			if err != nil {
				continue // a thread that ended
			}
			_, _ = f.WriteString(name)
			_ = f.Close()
		}
	}
}

// restore puts back the calling thread's slack after a failed attempt; it cannot fail in a
// way the caller could act on.
func restore(had time.Duration) {
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(had), 0, 0, 0)
}
