//go:build !unix

package filtertest

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
