//go:build !linux

package etcdtest

import "syscall"

// etcdProcAttr sets nothing off Linux: a member may outlive a test binary
// that dies without its cleanups.
func etcdProcAttr() *syscall.SysProcAttr { return nil }

// lockFile does not lock off Linux: concurrent builds each write their own
// temporary file and rename it, so the last one wins and none is torn.
func lockFile(path string) (unlock func(), err error) { return func() {}, nil }
