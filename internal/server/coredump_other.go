//go:build unix && !linux

package server

import "syscall"

// disableCoreDumps keeps the server's memory, which holds the root key and
// unsealed key material, out of core files.
func disableCoreDumps() error {
	return syscall.Setrlimit(syscall.RLIMIT_CORE, &syscall.Rlimit{})
}
