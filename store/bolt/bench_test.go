package bolt

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nkms/nkms"
)

// benchStore returns a store holding n keys and their tags.
func benchStore(b *testing.B, n int) (*Store, []string) {
	b.Helper()
	s := openTest(b, filepath.Join(b.TempDir(), "nkms.db"), Options{})
	tags := make([]string, n)
	for i := range tags {
		k, err := s.Create(b.Context(), testKey(b, 1, fmt.Sprintf("key%d", i), randomBytes(b, 60)))
		if err != nil {
			b.Fatal(err)
		}
		tags[i] = k.Tag
	}
	return s, tags
}

func BenchmarkGet(b *testing.B) {
	s, tags := benchStore(b, 1000)
	i := 0
	for b.Loop() {
		if _, err := s.Get(b.Context(), tags[i%len(tags)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkUpdate(b *testing.B) {
	s, tags := benchStore(b, 1000)
	i := 0
	for b.Loop() {
		_, err := s.Update(b.Context(), tags[i%len(tags)], func(k *nkms.Key) error {
			k.Memo = strconv.Itoa(i)
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkCreate(b *testing.B) {
	s, _ := benchStore(b, 0)
	i := 0
	for b.Loop() {
		if _, err := s.Create(b.Context(), testKey(b, 1, fmt.Sprintf("new%d", i), randomBytes(b, 60))); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// benchActivities returns n entries of k, one millisecond apart from start.
func benchActivities(k *nkms.Key, start time.Time, n int) []nkms.Activity {
	as := make([]nkms.Activity, n)
	for i := range as {
		as[i] = nkms.Activity{
			Tag: k.Tag, Keystore: k.Keystore, KeyName: k.Name, Time: start.Add(time.Duration(i) * time.Millisecond),
			RequestType: "API", Requestor: "NKbenchmark", IP: "192.0.2.1", Result: "SUCCESS",
			Action: "Encrypt", AuthType: "TOKEN",
		}
	}
	return as
}

// BenchmarkAppendActivities100 appends batches of 100 entries of one key
// whose log is capped at 10,000 entries, so that it reaches the steady state
// in which every batch also trims the 100 oldest.
func BenchmarkAppendActivities100(b *testing.B) { benchAppendActivities(b, 100) }

// BenchmarkAppendActivities1000 is BenchmarkAppendActivities100 with the
// batches of the usage-log recorder under load: 1000 entries.
func BenchmarkAppendActivities1000(b *testing.B) { benchAppendActivities(b, 1000) }

func benchAppendActivities(b *testing.B, size int) {
	s, tags := benchStore(b, 1)
	k, err := s.Get(b.Context(), tags[0])
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	i := 0
	for b.Loop() {
		batch := benchActivities(k, start.Add(time.Duration(i*size)*time.Millisecond), size)
		if err := s.AppendActivities(b.Context(), batch, 10_000); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkActivitiesPage reads a page of 100 of a key's 10,000 entries.
func BenchmarkActivitiesPage(b *testing.B) {
	s, tags := benchStore(b, 1)
	k, err := s.Get(b.Context(), tags[0])
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now().Add(-time.Hour)
	all := benchActivities(k, start, 10_000)
	for i := 0; i < len(all); i += 1000 {
		if err := s.AppendActivities(b.Context(), all[i:i+1000], 0); err != nil {
			b.Fatal(err)
		}
	}
	for _, bc := range []struct {
		name    string
		from    time.Time
		keyword string
		pageNo  int
	}{
		{"newest", start, "", 1},        // the whole log: the total is the counter
		{"page50", start, "", 50},       // the oldest page
		{"range", start.Add(1), "", 1},  // all but one entry: the total is counted
		{"keyword", start, "crypt", 1},  // every entry decoded and matched
		{"keyword/none", start, "x", 1}, // the same, nothing matches
	} {
		b.Run(bc.name, func(b *testing.B) {
			q := nkms.ActivityQuery{Tag: k.Tag, From: bc.from, To: start.Add(time.Hour), Keyword: bc.keyword, PageNo: bc.pageNo, PageSize: 100}
			for b.Loop() {
				if _, _, err := s.Activities(b.Context(), q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
