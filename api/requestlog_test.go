package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestRequestLogClipsMethodAndPath: the request log line takes at most
// maxAuditField (256) bytes of the method and of the path, as the audit log
// does (before, a 60 KB path made a 60 KB log line).
func TestRequestLogClipsMethodAndPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	long := strings.Repeat("a", 60<<10)
	for _, tc := range []struct{ name, method, path string }{
		{"long keyTag", "GET", "/kms/v1/keys/" + long},
		{"long unknown path", "GET", "/" + long},
		{"long method", strings.Repeat("M", 60<<10), "/kms/v1/keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(e.logs.String())
			r, err := http.NewRequest(tc.method, e.srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode < 400 {
				t.Fatalf("got %d, want a refusal", resp.StatusCode)
			}
			var line string
			for l := range strings.Lines(e.logs.String()[before:]) {
				if strings.Contains(l, "msg=request ") {
					line = l
				}
			}
			if line == "" {
				t.Fatalf("no request line in the log:\n%.2000s", e.logs.String())
			}
			if len(line) > 1024 {
				t.Fatalf("request log line of %d bytes, want at most 1 KiB: %.300s…", len(line), line)
			}
		})
	}
}
