package api

import (
	"path"
	"testing"
)

// canonicalPath(p) must be exactly "p is rooted and path.Clean(p) == p":
// ServeHTTP answers 404 for other paths rather than let the mux redirect.
func FuzzCanonicalPath(f *testing.F) {
	for _, p := range []string{"", "/", "//", "/.", "/..", "/a", "/a/", "/a//b", "/a/./b", "/a/../b", "/a/.b",
		"/a/..b", "/a/b.", "/a/b/..", "/a/b/.", "a/b", ".", "/kms/v1/keys/x/encrypt", "/./", "/.../"} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, p string) {
		want := p != "" && p[0] == '/' && path.Clean(p) == p
		if got := canonicalPath(p); got != want {
			t.Fatalf("canonicalPath(%q) = %v, want %v", p, got, want)
		}
	})
}
