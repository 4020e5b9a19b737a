//go:build !linux

package nkms

// lowerThreadPriority does nothing outside Linux: there the Heavy pool's
// threads keep the process's priority, and the pool only bounds the
// operations.
func lowerThreadPriority() {}
