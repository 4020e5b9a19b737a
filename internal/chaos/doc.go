// Package chaos holds nkms's chaos tests; it has no code of its own. They
// build the nkms binary, run it as real processes and break it while a
// load runs, checking every answer against a model of what was
// acknowledged:
//
//   - TestCrashLoop: one server on one data dir (bbolt), SIGKILLed at random
//     moments under load and restarted, for about 15s of cycles
//     (-crashloop.duration=10m makes it a soak, -crashloop.seed repeats the
//     random choices).
//   - TestCluster: three etcd members and three nkms nodes (--store etcd);
//     the etcd raft leader and the node that leads the scheduler are
//     SIGKILLed under load, cross-node freshness, unique names, cancels
//     racing purges and the loss of etcd's quorum are checked
//     (-cluster.duration=5m repeats the fault cycle, -cluster.seed the
//     random choices).
//
// They take minutes of a small machine, so they skip with -short: `go test
// -short ./...` stays quick, and CI (`go test -race ./...`) runs them. They
// live apart from cmd/nkms so that the command line's own tests stay the
// tests of the command line.
package chaos
