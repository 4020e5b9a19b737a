package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/etcdtest"
)

// TestServerOnTLSEtcd runs nkms server on an etcd that speaks only TLS and
// requires client certificates: with --etcd-ca-cert, --etcd-cert and
// --etcd-key it serves signed requests, and its keys are in that etcd.
// Each mistake in those options stops it at startup with a message that
// names the problem, instead of serving or hanging.
func TestServerOnTLSEtcd(t *testing.T) {
	t.Parallel()
	ec := etcdtest.StartTLS(t, 1)
	files := ec.TLS()
	eps := strings.Join(ec.Endpoints(), ",")
	etcdArgs := func(prefix string, tlsArgs ...string) []string {
		return append([]string{"--store", "etcd", "--etcd-endpoints", eps, "--etcd-prefix", prefix}, tlsArgs...)
	}

	t.Run("serves", func(t *testing.T) {
		t.Parallel()
		p := start(t, t.TempDir(), credEnv, etcdArgs("/tls-serves/",
			"--etcd-ca-cert", files.CA, "--etcd-cert", files.ClientCert, "--etcd-key", files.ClientKey)...)
		c := adminClient(t, p)
		ctx := context.Background()
		k, err := c.CreateKey(ctx, client.CreateKeyRequest{KeyName: "overtls", KeyType: "AES256"})
		if err != nil {
			t.Fatalf("create key: %v\n%s", err, p.Stderr)
		}
		ct, err := c.Encrypt(ctx, k.KeyTag, []byte("secret over TLS"), nil)
		if err != nil {
			t.Fatalf("encrypt: %v", err)
		}
		pt, err := c.Decrypt(ctx, k.KeyTag, ct, nil)
		if err != nil || string(pt) != "secret over TLS" {
			t.Fatalf("decrypt: %q, %v; want the plaintext", pt, err)
		}
		resp, err := ec.Client(t).Get(ctx, "/tls-serves/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count == 0 {
			t.Error("nothing under --etcd-prefix /tls-serves/ in the TLS etcd")
		}
		p.Stop(t)
	})

	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	for _, tc := range []struct {
		name string
		args []string
		want []string // in stderr, each
	}{{
		name: "no client certificate",
		args: etcdArgs("/p/", "--etcd-ca-cert", files.CA),
		want: []string{"remote error: tls: certificate required", "wants --etcd-cert and --etcd-key"},
	}, {
		name: "a CA that did not sign the members' certificate",
		args: etcdArgs("/p/", "--etcd-ca-cert", files.OtherCA, "--etcd-cert", files.ClientCert, "--etcd-key", files.ClientKey),
		want: []string{"x509: certificate signed by unknown authority", "--etcd-ca-cert must name the CA"},
	}, {
		name: "no CA (the system's roots)",
		args: etcdArgs("/p/", "--etcd-cert", files.ClientCert, "--etcd-key", files.ClientKey),
		want: []string{"x509: certificate signed by unknown authority", "--etcd-ca-cert must name the CA"},
	}, {
		name: "plain http:// to a TLS member",
		args: []string{"--store", "etcd", "--etcd-endpoints", strings.ReplaceAll(eps, "https://", "http://"), "--etcd-prefix", "/p/"},
		want: []string{"closed the plain HTTP connection without an answer", "give their URLs as https://"},
	}, {
		name: "a key that is not the certificate's",
		args: etcdArgs("/p/", "--etcd-ca-cert", files.CA, "--etcd-cert", files.ClientCert, "--etcd-key", files.MemberKey),
		want: []string{"--etcd-cert/--etcd-key", "private key does not match public key"},
	}, {
		name: "a CA file that does not exist",
		args: etcdArgs("/p/", "--etcd-ca-cert", missing, "--etcd-cert", files.ClientCert, "--etcd-key", files.ClientKey),
		want: []string{"--etcd-ca-cert", missing, "no such file or directory"},
	}, {
		name: "a key file that cannot be read",
		args: etcdArgs("/p/", "--etcd-ca-cert", files.CA, "--etcd-cert", files.ClientCert, "--etcd-key", dir),
		want: []string{"--etcd-cert/--etcd-key", dir, "is a directory"},
	}, {
		name: "a CA file without a certificate",
		args: etcdArgs("/p/", "--etcd-ca-cert", files.ClientKey, "--etcd-cert", files.ClientCert, "--etcd-key", files.ClientKey),
		want: []string{"--etcd-ca-cert", "no PEM certificate in the file"},
	}, {
		name: "a certificate without its key",
		args: etcdArgs("/p/", "--etcd-ca-cert", files.CA, "--etcd-cert", files.ClientCert),
		want: []string{"--etcd-cert and --etcd-key must be given together"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stderr := refusedStart(t, tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr does not name the problem: no %q in\n%s", w, stderr)
				}
			}
		})
	}
}

// refusedStart runs `nkms server` with args and returns its stderr once it
// exits; it fails the test if the server serves, exits with 0, or is still
// starting after a minute (several times the bounds of its etcd startup).
func refusedStart(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"server", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)...)
	cmd.Env = append(os.Environ(), credEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("nkms server %v still running after a minute: it hangs\n%s", args, &stderr)
	}
	if err == nil {
		t.Fatalf("nkms server %v exited with 0\n%s", args, &stderr)
	}
	if strings.Contains(stderr.String(), "serving on") {
		t.Fatalf("nkms server %v served\n%s", args, &stderr)
	}
	return stderr.String()
}
