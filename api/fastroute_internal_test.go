package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestFastRoutesAgreeWithMux: for every request that the fast table takes,
// a ServeMux with the same patterns picks the same pattern and gives the same
// keyTag; and the crypto routes are in the table.
func TestFastRoutesAgreeWithMux(t *testing.T) {
	s := New(nil, Config{})
	for _, want := range []string{"POST /kms/v1/keys/{keyTag}/encrypt", "POST /kms/v1/keys/{keyTag}/decrypt", "POST /keys/v2/{keyTag}/encrypt"} {
		found := false
		for _, fr := range s.fast {
			found = found || fr.pattern == want
		}
		if !found {
			t.Errorf("the fast table has no %s", want)
		}
	}
	type match struct{ pattern, tag string }
	var got match
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.HandleFunc(rt.method+" "+rt.path, func(_ http.ResponseWriter, r *http.Request) {
			got = match{r.Pattern, r.PathValue("keyTag")}
		})
	}
	mux.HandleFunc("/", func(http.ResponseWriter, *http.Request) { got = match{"/", ""} })

	tags := []string{strings.Repeat("ab", 32), "x", "%41b", "a%2Fb", "a%20b", "%7BkeyTag%7D", "encrypt", "keys", "a%25b", "ü"}
	var paths []string
	for _, rt := range s.routes() {
		for _, tag := range tags {
			p := strings.Replace(rt.path, "{keyTag}", tag, 1)
			p = strings.Replace(p, "{version}", "1", 1)
			p = strings.Replace(p, "{accessKey}", "AK", 1)
			paths = append(paths, p, p+"/", p+"/x", strings.Replace(p, "/encrypt", "/encr%79pt", 1))
			if i := strings.Index(p, "/keys/"); i > 0 { // a slash of the prefix escaped
				paths = append(paths, p[:i]+"%2F"+p[i+1:])
			}
			if last := strings.LastIndexByte(p, '/'); last > 0 { // the slash before the action escaped
				paths = append(paths, p[:last]+"%2F"+p[last+1:])
			}
		}
	}
	taken := 0
	for _, method := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
		for _, p := range paths {
			r := httptest.NewRequest(method, "http://nkms.test"+p, nil)
			fr, tag, ok := s.fastRoute(r, r.URL.Path)
			if !ok {
				continue
			}
			taken++
			got = match{}
			mux.ServeHTTP(httptest.NewRecorder(), r)
			if want := (match{fr.pattern, tag}); got != want {
				t.Errorf("%s %s: the fast table gives %+v, the mux %+v", method, p, want, got)
			}
		}
	}
	if taken == 0 {
		t.Fatal("the fast table took no request")
	}
}
