package api

import (
	"net/http"
	"strings"
)

// The routes that nearly every request takes, the crypto calls on a key, are
// found without the ServeMux: a table keyed by method, the path before the
// key tag and the one literal segment after it. The mux's match unescapes
// every segment and fills a slice of path values per request; this finds the
// same route by two byte searches and one map lookup. It takes only the
// requests that the mux would give to the same route with the same keyTag:
// a canonical path (ServeHTTP checks it first) without a RawPath (so that
// the decoded path's segments are the ones the mux matches), and a method
// named by the route itself; any other goes to the mux.

// fastKey is a request as the fast table knows it: method, the path up to
// and including the "/" before the key tag, and the segment after the tag.
type fastKey struct{ method, prefix, action string }

// fastRoute is a route of the fast table: its mux pattern (r.Pattern) and
// handler.
type fastRoute struct {
	pattern string
	h       http.Handler
}

// fastShape splits a route pattern of the fast table's shape,
// prefix{keyTag}/action with a prefix and action of literals only, and
// reports whether it has that shape.
func fastShape(path string) (prefix, action string, ok bool) {
	const tag = "{keyTag}/"
	i := strings.Index(path, tag)
	if i < 0 {
		return "", "", false
	}
	prefix, action = path[:i], path[i+len(tag):]
	if action == "" || strings.ContainsAny(action, "/{}") || strings.ContainsAny(prefix, "{}") {
		return "", "", false
	}
	return prefix, action, true
}

// segmentsMeet reports whether some path matches both patterns' paths,
// given as segments ("{...}" a wildcard of one segment; neither has a
// multi-segment wildcard).
func segmentsMeet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		wa, wb := strings.HasPrefix(a[i], "{"), strings.HasPrefix(b[i], "{")
		if !wa && !wb && a[i] != b[i] {
			return false
		}
	}
	return true
}

// newFastRoutes returns the fast table of routes rs, whose handlers are hs.
// A route whose requests another route (of its method, or of any) might
// also match is left to the mux, which decides between them.
func newFastRoutes(rs []route, hs []http.Handler) map[fastKey]fastRoute {
	m := map[fastKey]fastRoute{}
	segs := make([][]string, len(rs)) // each route's path, split once
	for i, rt := range rs {
		segs[i] = strings.Split(rt.path, "/")
	}
	for i, rt := range rs {
		prefix, action, ok := fastShape(rt.path)
		if !ok {
			continue
		}
		shared := false
		for j, other := range rs {
			if j != i && (other.method == rt.method || other.method == "") && segmentsMeet(segs[i], segs[j]) {
				shared = true
				break
			}
		}
		if !shared {
			m[fastKey{rt.method, prefix, action}] = fastRoute{pattern: rt.method + " " + rt.path, h: hs[i]}
		}
	}
	return m
}

// fastRoute returns the route of the fast table that r, whose path p is
// canonical, takes and its key tag as the mux would give it, if any.
func (s *Server) fastRoute(r *http.Request, p string) (fastRoute, string, bool) {
	if r.URL.RawPath != "" {
		return fastRoute{}, "", false
	}
	j := strings.LastIndexByte(p, '/')
	if j <= 0 {
		return fastRoute{}, "", false
	}
	i := strings.LastIndexByte(p[:j], '/')
	if i < 0 || j-i < 2 {
		return fastRoute{}, "", false
	}
	fr, ok := s.fast[fastKey{r.Method, p[:i+1], p[j+1:]}]
	return fr, p[i+1 : j], ok
}
