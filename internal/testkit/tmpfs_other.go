//go:build !linux

package testkit

import "testing"

// Tmpfs skips the test: mounting a tmpfs is a Linux test here.
func Tmpfs(t testing.TB, size int) string {
	t.Helper()
	t.Skip("tmpfs tests run on Linux")
	return ""
}

// FillDisk is not used off Linux.
func FillDisk(t testing.TB, dir string) string {
	t.Helper()
	t.Skip("tmpfs tests run on Linux")
	return ""
}
