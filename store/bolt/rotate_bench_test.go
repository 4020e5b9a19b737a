package bolt_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/internal/testkit"
	"github.com/nkms/nkms/store/bolt"
	"github.com/nkms/nkms/store/cache"
)

var benchCaller = nkms.Caller{AccessKey: "bench", Keystore: 1, Role: nkms.RoleAdmin}

// benchService returns a Service on a bbolt store behind the read cache, as
// `nkms server` assembles it.
func benchService(b *testing.B) *nkms.Service {
	b.Helper()
	st, err := bolt.Open(filepath.Join(b.TempDir(), "nkms.db"), bolt.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return &nkms.Service{Store: cache.New(st, 0), Root: testkit.RootKey(b), Now: time.Now}
}

// keyWithVersions creates a key of type typ and gives it n versions: the
// added ones reuse version 1's sealed material under their own numbers, which
// is enough for a rotation (it never opens old versions) and for crypto with
// the current version when n is 1.
func keyWithVersions(b *testing.B, s *nkms.Service, name string, typ nkms.KeyType, n int) nkms.Tag {
	b.Helper()
	k, err := s.CreateKey(b.Context(), benchCaller, nkms.CreateKeyInput{Name: name, Type: typ})
	if err != nil {
		b.Fatal(err)
	}
	if n == 1 {
		return k.KeyTag()
	}
	_, err = s.Store.Update(b.Context(), k.Tag, func(k *nkms.Key) error {
		v := k.Versions[0]
		for len(k.Versions) < n {
			v.Number = len(k.Versions) + 1
			k.Versions = append(k.Versions, v)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return k.KeyTag()
}

// BenchmarkRotate is one manual rotation through the Service of a key that
// has the given number of versions; each iteration rotates a key of its own,
// so that the count does not grow with b.N. Run it with a fixed count, e.g.
// -benchtime=200x.
func BenchmarkRotate(b *testing.B) {
	for _, n := range []int{1, 100, 1000 - 1} {
		b.Run(fmt.Sprintf("versions=%d", n), func(b *testing.B) {
			s := benchService(b)
			tags := make([]nkms.Tag, b.N)
			for i := range tags {
				tags[i] = keyWithVersions(b, s, fmt.Sprintf("key%d", i), nkms.AES256, n)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.Rotate(b.Context(), benchCaller, tags[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncryptManyVersions is one encrypt through the Service with a key
// of n versions, from the read cache (the store's Get copies the key).
func BenchmarkEncryptManyVersions(b *testing.B) {
	for _, typ := range []nkms.KeyType{nkms.AES256, nkms.RSA2048} {
		for _, n := range []int{1, 1000} {
			b.Run(fmt.Sprintf("%s/versions=%d", typ, n), func(b *testing.B) {
				s := benchService(b)
				tag := keyWithVersions(b, s, "enc", typ, n)
				// The current version's material must open: rotate once.
				if n > 1 {
					if _, err := s.Store.Update(b.Context(), tag.String(), func(k *nkms.Key) error {
						k.Versions = k.Versions[:len(k.Versions)-1]
						return nil
					}); err != nil {
						b.Fatal(err)
					}
					if _, err := s.Rotate(b.Context(), benchCaller, tag); err != nil {
						b.Fatal(err)
					}
				}
				msg := [][]byte{make([]byte, 32)}
				b.ReportAllocs()
				for b.Loop() {
					if _, err := s.Encrypt(b.Context(), benchCaller, tag, msg, ""); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
