package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/internal/sigv2"
	"github.com/nkms/nkms/internal/testkit"
	"github.com/nkms/nkms/store/bolt"
	"github.com/nkms/nkms/store/cache"
	"github.com/nkms/nkms/store/mem"
)

// BenchmarkAuthentication is the server-side cost of one signed request that
// fails authentication, by cause: what an attacker timing the answers could
// compare. "valid" (a 200 of an empty key list) is for reference. mem is the
// tests' store; bolt is nkms server's single-node stack (the read cache over
// a bbolt file), which caches known access keys but not unknown ones.
func BenchmarkAuthentication(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) nkms.Store
	}{
		{"mem", func(*testing.B) nkms.Store { return mem.New() }},
		{"bolt", func(b *testing.B) nkms.Store {
			st, err := bolt.Open(filepath.Join(b.TempDir(), "nkms.db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			return cache.New(st, 0)
		}},
	}
	for _, st := range stores {
		clk := testkit.NewClock(t0)
		svc := &nkms.Service{Store: st.open(b), Root: testkit.RootKey(b), Now: clk.Now}
		cred, err := svc.Bootstrap(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		srv := api.New(svc, api.Config{}) // no failure limit: every request is authenticated
		for _, tc := range []struct {
			name       string
			id, secret string
			status     int
		}{
			{"valid", cred.AccessKey, cred.SecretKey, http.StatusOK},
			{"wrong-signature", cred.AccessKey, "not-the-secret-key-of-it", http.StatusUnauthorized},
			{"unknown-key", "NKNOSUCHACCESSKEY00", cred.SecretKey, http.StatusUnauthorized},
		} {
			r := httptest.NewRequest("GET", "/kms/v1/keys?pageNo=1&pageSize=1", nil)
			sigv2.SignRequest(r, tc.id, []byte(tc.secret), clk.Now())
			b.Run(st.name+"/"+tc.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					w := httptest.NewRecorder()
					srv.ServeHTTP(w, r)
					if w.Code != tc.status {
						b.Fatalf("got %d %s, want %d", w.Code, w.Body, tc.status)
					}
				}
			})
		}
	}
}

// BenchmarkServerEncryptAES32BAuthFailureLimit is BenchmarkServerEncryptAES32B
// with the failure limit nkms server turns on by default: what it costs the
// requests that succeed (one look-up of their address's bucket).
func BenchmarkServerEncryptAES32BAuthFailureLimit(b *testing.B) {
	benchServerEncrypt(b, func(cfg *api.Config) { cfg.AuthFailuresPerSecond = api.DefaultAuthFailuresPerSecond })
}
