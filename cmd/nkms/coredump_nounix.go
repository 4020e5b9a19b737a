//go:build !unix

package main

// disableCoreDumps does nothing where there are no Unix core files.
func disableCoreDumps() error { return nil }
