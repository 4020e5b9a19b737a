package main

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nkms/nkms/internal/server"
)

// healthcheckRun runs `nkms healthcheck args...` and returns its exit code
// and output.
func healthcheckRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"healthcheck"}, args...)...)
	cmd.Env = []string{"HOME=" + t.TempDir()}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errOut.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errOut.String()
}

// TestHealthcheckDevTLS: against a --dev server, healthcheck passes with
// the data dir's certificate, fails without it, and over plain HTTP says
// that the server speaks HTTPS.
func TestHealthcheckDevTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir, credEnv, "--dev")
	cert := filepath.Join(dir, server.DevCertFile)

	if code, out, errOut := healthcheckRun(t, "--url", p.URL, "--ca-cert", cert); code != 0 || out != "ok\n" {
		t.Fatalf("healthcheck --ca-cert: exit %d, stdout %q, stderr %q; want 0, ok", code, out, errOut)
	}
	code, _, errOut := healthcheckRun(t, "--url", p.URL)
	if code == 0 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("healthcheck without --ca-cert: exit %d, stderr %q; want a certificate failure", code, errOut)
	}
	plain := "http://" + strings.TrimPrefix(p.URL, "https://")
	code, _, errOut = healthcheckRun(t, "--url", plain)
	want := "nkms: unhealthy: " + plain + "/healthz: the server speaks HTTPS\nnkms: hint: use --url https://"
	if code == 0 || !strings.HasPrefix(errOut, want) {
		t.Fatalf("healthcheck over plain HTTP: exit %d, stderr %q; want one starting %q", code, errOut, want)
	}
}

// TestHealthcheckUnhealthy: an unready server (503), an answer other than
// "ok", and a server that does not answer all fail with one line.
func TestHealthcheckUnhealthy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		args    []string
		want    string
	}{
		{"unready", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("unready: etcd: no leader\n"))
		}, nil, `answered 503 Service Unavailable: "unready: etcd: no leader"`},
		{"not ok", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("<html>\n<body>welcome</body>\n</html>"))
		}, nil, `answered 200 OK: "<html> <body>welcome</body> </html>"`},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		}, nil, `answered 302 Found`},
		{"no answer", func(w http.ResponseWriter, r *http.Request) {
			<-r.Context().Done()
		}, []string{"--timeout", "100ms"}, "/healthz: no answer within 100ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			code, out, errOut := healthcheckRun(t, append([]string{"--url", srv.URL}, tc.args...)...)
			if code != 1 || out != "" || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 1, nothing, one line with %q", code, out, errOut, tc.want)
			}
		})
	}
}
