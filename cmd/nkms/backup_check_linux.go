//go:build linux

package main

import "syscall"

// limitAddressSpace caps the process's virtual memory at n bytes, so that
// an allocation past it fails (and the Go runtime stops the process)
// instead of taking the machine's memory.
func limitAddressSpace(n uint64) error {
	return syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: n, Max: n})
}
