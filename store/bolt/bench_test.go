package bolt

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"

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
