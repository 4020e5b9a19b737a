//go:build linux || darwin || freebsd

package audit

import (
	"errors"
	"os"
	"syscall"
)

// errNoStatfs: this platform cannot tell free space; Ready skips that check.
var errNoStatfs = errors.New("free space unknown on this platform")

// freeSpace is the space an unprivileged writer may still use on the
// filesystem of path.
func freeSpace(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil //nolint:unconvert // field types differ between platforms
}

// lockFile takes an exclusive advisory lock on f for as long as it is open.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
