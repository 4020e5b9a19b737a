//go:build !cgo || noetcd

package hsmtest

import (
	"testing"

	"github.com/nkms/nkms/internal/hsm"
)

// DeleteObjects is never reached without HSM support: Module skips first.
func DeleteObjects(t testing.TB, _ hsm.Config, _ []byte, _ Class) int {
	t.Helper()
	t.Skip("built without HSM support")
	return 0
}

// CountObjects is never reached without HSM support: Module skips first.
func CountObjects(t testing.TB, _ hsm.Config, _ []byte, _ Class) int {
	t.Helper()
	t.Skip("built without HSM support")
	return 0
}

// GenerateForeign is never reached without HSM support: Module skips first.
func GenerateForeign(t testing.TB, _ hsm.Config, _ []byte, _ string) {
	t.Helper()
	t.Skip("built without HSM support")
}

// Flags is never reached without HSM support: Module skips first.
func Flags(t testing.TB, _ hsm.Config, _ []byte, _ Class) []map[string]bool {
	t.Helper()
	t.Skip("built without HSM support")
	return nil
}
