package etcd

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/nkms/nkms"
)

// The benchmarks run against the package's etcd of one member on loopback
// (no fsync; see etcdtest.Start): they measure the store's round trips
// and encoding, not a disk.

func benchStore(b *testing.B) (*Store, *nkms.Key) {
	_, cli := sharedEtcd(b)
	s := open(b, cli, newPrefix(b, cli))
	k, err := s.Create(b.Context(), testKey(1, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	return s, k
}

func BenchmarkEtcdGet(b *testing.B) {
	s, k := benchStore(b)
	for b.Loop() {
		if _, err := s.Get(b.Context(), k.Tag); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEtcdUpdate(b *testing.B) {
	s, k := benchStore(b)
	for b.Loop() {
		if _, err := s.Update(b.Context(), k.Tag, func(k *nkms.Key) error { k.Memo += "."; k.Memo = k.Memo[:1]; return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEtcdUpdateParallel(b *testing.B) {
	s, k := benchStore(b)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Update(b.Context(), k.Tag, func(k *nkms.Key) error { k.Memo = "x"; return nil }); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkEtcdAppendActivities appends batches of 100 entries of one key
// whose log is full at 1000, so that every batch also trims 100. It
// compacts etcd every 10 batches (not timed), as a production etcd compacts
// periodically: reads from the start of a log pass over the entries deleted
// since the last compaction.
func BenchmarkEtcdAppendActivities(b *testing.B) {
	s, k := benchStore(b)
	_, cli := sharedEtcd(b)
	t0 := time.Now()
	batch := make([]nkms.Activity, 100)
	i, n := 0, 0
	for b.Loop() {
		for j := range batch {
			batch[j] = nkms.Activity{Tag: k.Tag, Time: t0.Add(time.Duration(i)), RequestType: "API", Result: "SUCCESS", Action: "Encrypt", AuthType: "ACCOUNT"}
			i++
		}
		if err := s.AppendActivities(b.Context(), batch, 1000); err != nil {
			b.Fatal(err)
		}
		if n++; n%10 == 0 {
			b.StopTimer()
			resp, err := cli.Get(b.Context(), "compact")
			if err == nil {
				_, err = cli.Compact(b.Context(), resp.Header.Revision)
			}
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/entry")
}

// keyOfVersions creates a key and gives it n versions, at most 90 per
// Update (a txn holds at most 100 operations).
func keyOfVersions(b *testing.B, s *Store, name string, n int) *nkms.Key {
	b.Helper()
	k, err := s.Create(b.Context(), testKey(1, name))
	if err != nil {
		b.Fatal(err)
	}
	for k.Current() < n {
		k, err = s.Update(b.Context(), k.Tag, func(k *nkms.Key) error {
			v := k.Versions[0]
			for range min(90, n-len(k.Versions)) {
				v.Number = len(k.Versions) + 1
				k.Versions = append(k.Versions, v)
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return k
}

// BenchmarkEtcdGetManyVersions is what each crypto request pays on etcd
// (which has no read cache) for a key of n versions.
func BenchmarkEtcdGetManyVersions(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("versions=%d", n), func(b *testing.B) {
			_, cli := sharedEtcd(b)
			s := open(b, cli, newPrefix(b, cli))
			k := keyOfVersions(b, s, "bench", n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Get(b.Context(), k.Tag); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEtcdRotate is an Update that adds a version (as a rotation
// does) to a key of n versions; each iteration has a key of its own. Run it
// with a fixed count, e.g. -benchtime=50x.
func BenchmarkEtcdRotate(b *testing.B) {
	for _, n := range []int{1, 999} {
		b.Run(fmt.Sprintf("versions=%d", n), func(b *testing.B) {
			_, cli := sharedEtcd(b)
			s := open(b, cli, newPrefix(b, cli))
			tags := make([]string, b.N)
			for i := range tags {
				tags[i] = keyOfVersions(b, s, fmt.Sprintf("key%d", i), n).Tag
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.Update(b.Context(), tags[i], func(k *nkms.Key) error {
					v := k.Versions[0]
					v.Number = len(k.Versions) + 1
					k.Versions = append(k.Versions, v)
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEtcdAppendRecorder appends as nkms.Recorder does under load:
// batches of 500 entries of one key, maxPerKey 10000, so that once the log is
// full every batch also trims 500. It compacts every 10 batches (not timed)
// and reports the txns (etcd revisions) and the rows of the log per entry
// and, when it finds the etcd process among its children, etcd's CPU per
// entry (the machine may be shared: compare runs made together).
func BenchmarkEtcdAppendRecorder(b *testing.B) {
	s, k := benchStore(b)
	_, cli := sharedEtcd(b)
	t0 := time.Now()
	batch := make([]nkms.Activity, 500)
	rev := func() int64 {
		resp, err := cli.Get(b.Context(), "compact")
		if err != nil {
			b.Fatal(err)
		}
		return resp.Header.Revision
	}
	cpu0, haveCPU := etcdCPU()
	rev0 := rev()
	i, n := 0, 0
	for b.Loop() {
		for j := range batch {
			batch[j] = nkms.Activity{Tag: k.Tag, Keystore: 1, KeyName: "bench", Time: t0.Add(time.Duration(i) * time.Microsecond), RequestType: "API",
				Requestor: "NKbench", IP: "192.0.2.1", Result: "SUCCESS", Action: "Encrypt", AuthType: "ACCOUNT"}
			i++
		}
		if err := s.AppendActivities(b.Context(), batch, 10000); err != nil {
			b.Fatal(err)
		}
		if n++; n%10 == 0 {
			b.StopTimer()
			if _, err := cli.Compact(b.Context(), rev()); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(i), "ns/entry")
	b.ReportMetric(float64(rev()-rev0)/float64(i), "txns/entry")
	p := s.logPrefix(k.Tag, false)
	resp, err := cli.Get(b.Context(), p, clientv3.WithRange(logEnd(p)), clientv3.WithCountOnly())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(resp.Count)/float64(min(i, 10000)), "rows/entry")
	if cpu1, ok := etcdCPU(); ok && haveCPU {
		b.ReportMetric(float64(cpu1-cpu0)/float64(i)/1e3, "etcd-µs/entry")
	}
}

// etcdCPU is the CPU time (user+system) of the etcd process started by this
// test binary, found among its children.
func etcdCPU() (time.Duration, bool) {
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, pid := range strings.Fields(string(b)) {
			stat, err := os.ReadFile("/proc/" + pid + "/stat")
			if err != nil || !strings.Contains(string(stat), "etcd") {
				continue
			}
			f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+2:]))
			if len(f) < 13 {
				continue
			}
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			return time.Duration(ut+st) * time.Second / 100, true // USER_HZ is 100 on Linux
		}
	}
	return 0, false
}

// BenchmarkCatchUp: CatchUps from 16 goroutines, as requests of a loaded
// node call them (each shares a quorum read with those that wait with it).
// It reports the quorum reads per CatchUp and the CPU per quorum read of
// this process and, when it finds it, of etcd (compare runs made together:
// the machine may be shared).
func BenchmarkCatchUp(b *testing.B) {
	_, cli := sharedEtcd(b)
	st := open(b, cli, newPrefix(b, cli))
	f, err := st.Follow(b.Context(), Changes{Key: func(string) {}, AccessKey: func(string) {}, All: func() {}})
	if err != nil {
		b.Fatal(err)
	}
	rounds0 := f.Rounds()
	cpu0, haveCPU := etcdCPU()
	self0 := selfCPU()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f.CatchUp(b.Context()); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	rounds := float64(f.Rounds() - rounds0)
	b.ReportMetric(rounds/float64(b.N), "reads/op")
	b.ReportMetric(float64(selfCPU()-self0)/rounds/1e3, "self-µs/read")
	if cpu1, ok := etcdCPU(); ok && haveCPU {
		b.ReportMetric(float64(cpu1-cpu0)/rounds/1e3, "etcd-µs/read")
	}
}

// selfCPU is the CPU time (user+system) of this process so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
