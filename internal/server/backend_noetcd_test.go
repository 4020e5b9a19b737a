//go:build noetcd

package server

import (
	"context"
	"errors"
	"io"
	"testing"
)

// Built with -tags noetcd, nkms server refuses --store etcd with an error
// that says why, both when the configuration is validated and if the
// backend is opened anyway; --store bolt works as ever.
// Run it with: go test -tags noetcd -run NoEtcd ./internal/server
func TestNoEtcdBuildRefusesEtcdStore(t *testing.T) {
	cfg := testConfig(t)
	cfg.Store = "etcd"
	cfg.EtcdEndpoints = []string{"http://127.0.0.1:2379"}
	if err := cfg.Validate(); !errors.Is(err, errNoEtcd) {
		t.Fatalf("Validate with --store etcd = %v, want %v", err, errNoEtcd)
	}
	if err := Run(context.Background(), cfg, io.Discard); !errors.Is(err, errNoEtcd) {
		t.Fatalf("Run with --store etcd = %v, want %v", err, errNoEtcd)
	}
	if _, err := openEtcd(context.Background(), cfg, nil); !errors.Is(err, errNoEtcd) {
		t.Fatalf("openEtcd = %v, want %v", err, errNoEtcd)
	}
}
