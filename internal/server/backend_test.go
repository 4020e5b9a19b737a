package server

import (
	"testing"

	"github.com/nkms/nkms/store/etcd"
)

// The default --etcd-prefix of nkms server is the store's own default: the
// constant is repeated in this package only so that cmd/nkms need not
// import store/etcd (left out by -tags noetcd).
func TestDefaultEtcdPrefixIsTheStores(t *testing.T) {
	if DefaultEtcdPrefix != etcd.DefaultPrefix {
		t.Fatalf("server.DefaultEtcdPrefix = %q, store/etcd.DefaultPrefix = %q", DefaultEtcdPrefix, etcd.DefaultPrefix)
	}
}
