//go:build unix

package filtertest

import (
	"syscall"
	"time"
)

// processCPU returns the CPU time the process has used, user and system.
// Benchmarks report it per op next to wall time: on a loaded machine wall
// time mostly measures the wait for a core.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
