package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/server"
)

// TestRefusesPlainHTTPOffLoopback: a non-loopback --listen without TLS is
// refused with a clear message, unless --insecure-http is given.
func TestRefusesPlainHTTPOffLoopback(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "server", "--listen", "0.0.0.0:0", "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), credEnv...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("plain HTTP on 0.0.0.0: err %v, want a non-zero exit\n%s", err, out)
	}
	for _, want := range []string{"refusing plain HTTP on 0.0.0.0:0", "--tls-cert", "--insecure-http"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("message lacks %q:\n%s", want, out)
		}
	}
	// --insecure-http lets it serve (on every interface; the test talks to it on loopback).
	p := start(t, t.TempDir(), credEnv, "--listen", "0.0.0.0:0", "--insecure-http")
	url := strings.Replace(p.URL, "0.0.0.0", "127.0.0.1", 1)
	url = strings.Replace(url, "[::]", "127.0.0.1", 1)
	c, err := client.New(url, testAccessKey, testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListKeys(context.Background(), 1, 10); err != nil {
		t.Fatalf("--insecure-http server: %v", err)
	}
}

var fingerprintRE = regexp.MustCompile(`self-signed TLS certificate (\S+) \(SHA-256 ([0-9A-F:]{95})\)`)

// TestDevTLS: --dev serves HTTPS with a self-signed certificate kept in the
// data dir (the same one after a restart), refuses plain HTTP and TLS
// below 1.2, and the client commands trust it with --ca-cert.
func TestDevTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir, credEnv, "--dev")
	if !strings.HasPrefix(p.URL, "https://") {
		t.Fatalf("--dev serves on %s, want https", p.URL)
	}
	m := fingerprintRE.FindStringSubmatch(p.Stderr.String())
	if m == nil {
		t.Fatalf("no certificate fingerprint printed:\n%s", p.Stderr)
	}
	certPath, fp := m[1], m[2]
	if certPath != filepath.Join(dir, server.DevCertFile) {
		t.Fatalf("certificate at %s, want in the data dir", certPath)
	}
	for _, f := range []string{server.DevCertFile, server.DevKeyFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
	pem, err := os.ReadFile(certPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)

	c := adminClient(t, p, client.WithRootCAs(pool))
	if _, err := c.CreateKey(context.Background(), client.CreateKeyRequest{KeyName: "tls-key", KeyType: "AES256"}); err != nil {
		t.Fatalf("request over TLS: %v", err)
	}
	// Without trusting the certificate, the handshake fails.
	untrusted, _ := client.New(p.URL, testAccessKey, testSecretKey)
	if _, err := untrusted.ListKeys(context.Background(), 1, 10); err == nil {
		t.Fatal("a client that does not trust the dev certificate connected")
	}
	// TLS 1.1 is refused; 1.3 is what a modern client gets.
	addr := strings.TrimPrefix(p.URL, "https://")
	if conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11, MinVersion: tls.VersionTLS10}); err == nil {
		conn.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if v := conn.ConnectionState().Version; v != tls.VersionTLS13 {
		t.Errorf("negotiated TLS version %x, want 1.3", v)
	}
	conn.Close()
	// Plain HTTP to the TLS port gets no KMS answer.
	if resp, err := http.Get("http://" + addr + "/kms/v1/keys"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS port: %s", resp.Status)
		}
	}

	// The client commands trust it with --ca-cert (or NKMS_CA_CERT).
	cmd := exec.Command(binary, "access-key", "list", "--url", p.URL, "--ca-cert", certPath)
	cmd.Env = append(os.Environ(), credEnv...)
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), testAccessKey) {
		t.Fatalf("access-key list --ca-cert: %v\n%s", err, out)
	}

	// A restart keeps the certificate (same fingerprint).
	p.Kill()
	p2 := start(t, dir, credEnv, "--dev")
	if m2 := fingerprintRE.FindStringSubmatch(p2.Stderr.String()); m2 == nil || m2[2] != fp {
		t.Fatalf("the certificate changed across a restart:\n%s", p2.Stderr)
	}
}

// TestDevTLSAfterACrash: what a crash while writing the --dev
// certificate left in the data dir (here a directory where a writer with a
// fixed temporary name would put its file) does not stop the next start;
// the new certificate and key are written whole, with mode 0600.
func TestDevTLSAfterACrash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{server.DevCertFile, server.DevKeyFile} {
		if err := os.MkdirAll(filepath.Join(dir, f+".tmp", "left"), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	p := start(t, dir, credEnv, "--dev")
	if !strings.HasPrefix(p.URL, "https://") {
		t.Fatalf("--dev serves on %s, want https", p.URL)
	}
	if _, err := tls.LoadX509KeyPair(filepath.Join(dir, server.DevCertFile), filepath.Join(dir, server.DevKeyFile)); err != nil {
		t.Fatalf("the --dev certificate and key: %v", err)
	}
	for _, f := range []string{server.DevCertFile, server.DevKeyFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v; want mode 0600", f, err)
		}
	}
}

// TestTLSFlags: given certificate files are used; half a pair, or --dev
// with files, is a configuration error.
func TestTLSFlags(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir, credEnv, "--dev") // to get a certificate pair
	p.Kill()
	cert, key := filepath.Join(dir, server.DevCertFile), filepath.Join(dir, server.DevKeyFile)

	p2 := start(t, t.TempDir(), credEnv, "--tls-cert", cert, "--tls-key", key)
	if !strings.HasPrefix(p2.URL, "https://") || strings.Contains(p2.Stderr.String(), "self-signed") {
		t.Fatalf("--tls-cert: serving on %s\n%s", p2.URL, p2.Stderr)
	}
	for _, args := range [][]string{
		{"--tls-cert", cert},
		{"--tls-key", key},
		{"--dev", "--tls-cert", cert, "--tls-key", key},
		{"--pprof-listen", "0.0.0.0:0"},
	} {
		cmd := exec.Command(binary, append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)...)
		cmd.Env = append(os.Environ(), credEnv...)
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("server %v started; want a configuration error\n%s", args, out)
		}
	}
}

// TestMaxConnectionsFlag: --max-connections must not be negative; with a
// cap of 1 the server still serves one client's requests one after the
// other (the cap itself is tested in internal/server).
func TestMaxConnectionsFlag(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(binary, "server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--max-connections", "-1")
	cmd.Env = append(os.Environ(), credEnv...)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "nkms: --max-connections must not be negative") {
		t.Fatalf("--max-connections -1: %v\n%s", err, out)
	}
	p := start(t, t.TempDir(), credEnv, "--max-connections", "1")
	c := adminClient(t, p)
	for i := range 3 {
		if _, err := c.ListKeys(context.Background(), 1, 10); err != nil {
			t.Fatalf("request %d with --max-connections 1: %v", i+1, err)
		}
	}
}

// TestRefusesRootKeyReadableByOthers: a root key file with group or other
// permissions stops the server with a hint; 0600 starts it.
func TestRefusesRootKeyReadableByOthers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := start(t, dir, credEnv) // creates root.key 0600
	p.Kill()
	rootKey := filepath.Join(dir, "root.key")
	if fi, err := os.Stat(rootKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("root key file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if fi, err := os.Stat(filepath.Join(dir, "nkms.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("data file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}
	if err := os.Chmod(rootKey, 0o640); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "server", "--listen", "127.0.0.1:0", "--data-dir", dir)
	cmd.Env = append(os.Environ(), credEnv...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "group or others may read it") || !strings.Contains(string(out), "nkms: hint: chmod 600") {
		t.Fatalf("root key 0640: %v\n%s", err, out)
	}
	if err := os.Chmod(rootKey, 0o600); err != nil {
		t.Fatal(err)
	}
	start(t, dir, credEnv)
}

// TestNoCoreDumps: the server runs with a core file size limit of 0, so its
// memory (root key, unsealed key material) never lands in a core file.
func TestNoCoreDumps(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/limits"); err != nil {
		t.Skip("no /proc here")
	}
	p := start(t, t.TempDir(), credEnv)
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", p.Cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^Max core file size\s+0\s+0\s`).Match(limits) {
		t.Fatalf("core files are allowed:\n%s", limits)
	}
}

// TestRefusesAnotherRootKey: a data file remembers its root key (a value
// sealed under it); starting it with another root key file fails at once
// with a hint, instead of failing every request later.
func TestRefusesAnotherRootKey(t *testing.T) {
	t.Parallel()
	dir, otherDir := t.TempDir(), t.TempDir()
	start(t, dir, credEnv).Kill()
	start(t, otherDir, credEnv).Kill() // another data dir, another root key
	cmd := exec.Command(binary, "server", "--listen", "127.0.0.1:0", "--data-dir", dir,
		"--root-key-file", filepath.Join(otherDir, "root.key"))
	cmd.Env = append(os.Environ(), credEnv...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is not the root key of") || !strings.Contains(string(out), "nkms: hint:") {
		t.Fatalf("another root key: %v\n%s", err, out)
	}
	start(t, dir, credEnv) // its own root key still works
}

// TestAuthFailureRateFlag: --auth-failure-rate and --auth-failure-burst reach
// the server: past its burst of failures, an address is answered 429 even
// for a correctly signed request.
func TestAuthFailureRateFlag(t *testing.T) {
	t.Parallel()
	p := start(t, t.TempDir(), credEnv, "--auth-failure-rate", "0.001", "--auth-failure-burst", "2")
	bad, err := client.New(p.URL, testAccessKey, "not-the-secret-key-0", client.WithRetries(1))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		var ce *client.Error
		if _, err := bad.ListKeys(context.Background(), 1, 10); !errors.As(err, &ce) || ce.Status != http.StatusUnauthorized {
			t.Fatalf("bad signature %d: %v, want 401", i+1, err)
		}
	}
	good := adminClient(t, p, client.WithRetries(1))
	var ce *client.Error
	if _, err := good.ListKeys(context.Background(), 1, 10); !errors.As(err, &ce) || ce.Status != http.StatusTooManyRequests {
		t.Fatalf("signed request after the burst of failures: %v, want 429", err)
	}
}
