//go:build linux

package server

import (
	"fmt"
	"syscall"
)

// disableCoreDumps keeps the server's memory, which holds the root key and
// unsealed key material, out of core files, and (by clearing the dumpable
// flag) away from debuggers of the same user: ptrace and /proc/PID/mem then
// need root's CAP_SYS_PTRACE.
func disableCoreDumps() error {
	if err := syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{}); err != nil {
		return fmt.Errorf("disable core dumps: %w", err)
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_DUMPABLE, 0, 0); errno != 0 {
		return fmt.Errorf("clear the dumpable flag: %w", errno)
	}
	return nil
}
