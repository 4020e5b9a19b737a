//go:build !unix

package server

// disableCoreDumps does nothing where there are no Unix core files.
func disableCoreDumps() error { return nil }
