// Command etcd is a pinned etcd server (go.etcd.io/etcd/server/v3 v3.6.16)
// for the tests of store/etcd: internal/etcdtest.Binary builds it once per
// machine and StartEtcd runs it on loopback.
//
// It is a module of its own so that the server's many dependencies stay out
// of nkms's go.mod; `go test ./...` and `go vet ./...` at the repository root
// skip nested modules. It exists because the tests should run against a
// current etcd release pinned here, not Debian's etcd-server package
// (3.4.23, from 2022).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
