package console_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/nkms/nkms/console"
)

// TestHandler: the console's files are served with its security headers,
// only for GET and HEAD, and nothing outside its embedded tree is reachable.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(console.Handler())
	defer srv.Close()
	get := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := get("GET", "/console/")
	if resp.StatusCode != 200 || !strings.Contains(body, "<html") ||
		resp.Header.Get("Content-Security-Policy") != console.ContentSecurityPolicy || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /console/: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := get("POST", "/console/"); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /console/: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	for _, p := range []string{"/console/../console.go", "/console/%2e%2e/console.go", "/console/static/index.html"} {
		if resp, body := get("GET", p); resp.StatusCode == 200 && strings.Contains(body, "package console") {
			t.Errorf("GET %s served a file outside the console's tree", p)
		}
	}
}
