package etcdtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

func TestEtcdBinaryCached(t *testing.T) {
	t.Parallel()
	a, b := Binary(t), Binary(t)
	if a != b {
		t.Errorf("Binary twice: %q then %q", a, b)
	}
	if !isExecutable(a) {
		t.Errorf("Binary = %q, not an executable file", a)
	}
}

// TestEtcdClusterKillRestart runs a cluster of three, loses one member and
// brings it back: the cluster keeps serving, and the member catches up.
func TestEtcdClusterKillRestart(t *testing.T) {
	t.Parallel()
	c := Start(t, 3)
	if got := len(c.Endpoints()); got != 3 {
		t.Fatalf("Endpoints: %d, want 3", got)
	}
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "before"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	c.Kill(1)
	// If member 1 led, a write in flight when it died fails (a client does
	// not retry a Put on its own); one after the election succeeds.
	for {
		_, err := cli.Put(ctx, "k", "during")
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("Put with a member down: %v", err)
		}
	}
	if err := c.Restart(1); err != nil {
		t.Fatal(err)
	}
	// Read from the restarted member alone, linearizably: it has caught up.
	one, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints()[1:2], DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer one.Close()
	resp, err := one.Get(ctx, "k")
	if err != nil {
		t.Fatalf("Get from the restarted member: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "during" {
		t.Errorf("Get from the restarted member = %v, want during", resp.Kvs)
	}
	if err := c.Restart(1); err == nil {
		t.Error("Restart of a running member succeeded")
	}
}

func TestLaunchEtcd(t *testing.T) {
	t.Parallel()
	c, err := Launch(1)
	if err != nil {
		t.Fatal(err)
	}
	dir := c.dir
	cli := c.Client(t)
	if _, err := cli.Put(t.Context(), "k", "v"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	c.Close()
	c.Close()
	if !c.members[0].exited() {
		t.Error("member still running after Close")
	}
	if isDir(dir) {
		t.Errorf("data directory %s left after Close", dir)
	}
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// TestEtcdTLSCluster runs a cluster of three that speaks only TLS, to
// clients and between members: a client with the cluster's CA and client
// certificate writes and reads through every member; one without a client
// certificate, or one that trusts another CA, gets nothing.
func TestEtcdTLSCluster(t *testing.T) {
	t.Parallel()
	c := StartTLS(t, 3)
	files := c.TLS()
	if files == nil {
		t.Fatal("TLS() of a cluster of StartTLS is nil")
	}
	for _, ep := range c.Endpoints() {
		if !strings.HasPrefix(ep, "https://") {
			t.Errorf("endpoint %q, want https://", ep)
		}
	}
	cli := c.Client(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	for _, ep := range c.Endpoints() {
		one, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 10 * time.Second, TLS: c.tlsConfig(), Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := one.Get(ctx, "k")
		one.Close()
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
			t.Errorf("Get from %s: %v, %v; want v", ep, resp, err)
		}
	}

	noCert := c.tlsConfig()
	noCert.Certificates = nil
	otherCA := c.tlsConfig()
	pemCA, err := os.ReadFile(files.OtherCA)
	if err != nil {
		t.Fatal(err)
	}
	otherCA.RootCAs = x509.NewCertPool()
	otherCA.RootCAs.AppendCertsFromPEM(pemCA)
	for name, conf := range map[string]*tls.Config{"no client certificate": noCert, "another CA": otherCA} {
		cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), TLS: conf, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		// The client retries until its context ends; a second is plenty
		// for a handshake on loopback to be refused.
		getCtx, cancel := context.WithTimeout(ctx, time.Second)
		_, err = cli.Get(getCtx, "k")
		cancel()
		cli.Close()
		if err == nil {
			t.Errorf("Get with %s succeeded", name)
		}
	}
	if c.TLS() == files {
		t.Error("TLS returns the cluster's own TLSFiles, not a copy")
	}
}
