// Package timerslack runs the process with a timer slack it chooses, on Linux.
//
// The kernel may fire a thread's timers up to its timer slack late, and so wakes it less
// often (prctl(2), PR_SET_TIMERSLACK; 50 µs unless the parent set another). The Go runtime's
// monitor thread sleeps 20 µs at a time for a while after each time the program wakes from
// idle; on a busy core each of those wake-ups switches the core to it and back, and a
// gateway that idles between bursts pays them over and over. A slack of a millisecond lets
// the kernel delay them and fold them into wake-ups the core makes anyway (under the
// repository's benchmark the monitor slept less than half as often).
//
// A thread sets only its own slack, and a new thread inherits its creator's. The monitor
// thread is created before main runs, so a slack set in main never reaches it: Ensure sets
// the slack on the calling thread and executes the binary again from that thread. The new
// image keeps the process id, the arguments, the environment and the open descriptors, and
// every thread of it, the monitor included, starts with the slack.
//
// On other systems Ensure does nothing and reports ErrUnsupported.
package timerslack

import "errors"

// ErrUnsupported is what Ensure reports where there is no timer slack to set.
var ErrUnsupported = errors.New("timerslack: not supported on this system")

// reexecEnv marks the image Ensure executed, so that a kernel which did not keep the slack
// across exec cannot make it execute again and again, and carries the process's name, which
// the exec changed. Ensure removes it from the environment.
const reexecEnv = "HOOKWALL_TIMER_SLACK_REEXEC"
