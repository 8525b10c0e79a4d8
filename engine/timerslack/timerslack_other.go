//go:build !linux

package timerslack

import "time"

// Ensure reports ErrUnsupported: only Linux has a timer slack.
func Ensure(time.Duration) error { return ErrUnsupported }
