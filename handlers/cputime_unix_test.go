//go:build unix

package handlers

import (
	"syscall"
	"time"
)

// processCPUTime returns the user and system CPU time of the process, which
// machine load inflates much less than wall-clock time.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
