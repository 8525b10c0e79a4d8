//go:build !linux

package timerslack

import "time"

// Current reports ErrUnsupported: only Linux has a timer slack.
func Current() (time.Duration, error) { return 0, ErrUnsupported }

// Ensure reports ErrUnsupported: only Linux has a timer slack.
func Ensure(time.Duration) error { return ErrUnsupported }
