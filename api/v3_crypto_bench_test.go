package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/sigv2"
)

// Benchmarks of the 3.0 crypto routes on the production stack (as
// BenchmarkServerEncryptAES32B): one signed raw caller for both APIs, so
// that only the route and its body differ.

// rawCaller sends signed requests to a server of serverStack.
type rawCaller struct {
	url        string
	ak, sk     string
	httpClient *http.Client
}

func newRawCaller(b *testing.B) (*rawCaller, *client.Client) {
	svc, c, url := serverStack(b, true)
	admin := nkms.Caller{AccessKey: "bench", Keystore: 1, Role: nkms.RoleAdmin}
	cr, err := svc.CreateAccessKey(context.Background(), admin, 1, nkms.RoleAdmin)
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	return &rawCaller{url: url, ak: cr.AccessKey, sk: cr.SecretKey, httpClient: &http.Client{Transport: tr}}, c
}

// post sends a signed POST and fails b unless the answer is 200.
func (rc *rawCaller) post(b *testing.B, path string, body []byte) {
	r, err := http.NewRequest("POST", rc.url+path, bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	r.Header.Set("Content-Type", "application/json")
	sigv2.SignRequest(r, rc.ak, []byte(rc.sk), time.Now())
	resp, err := rc.httpClient.Do(r)
	if err != nil {
		b.Error(err)
		return
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		b.Errorf("%s: %d %s", path, resp.StatusCode, out)
	}
}

func benchKey(b *testing.B, c *client.Client) string {
	k, err := c.CreateKey(context.Background(), client.CreateKeyRequest{KeyName: "bench", KeyType: "AES256"})
	if err != nil {
		b.Fatal(err)
	}
	return k.KeyTag
}

// BenchmarkV3EncryptAES32B: a 3.0 encrypt of 32 bytes against a 2.0 encrypt
// in the same run, parallel clients as BenchmarkServerEncryptAES32B.
func BenchmarkV3EncryptAES32B(b *testing.B) {
	rc, c := newRawCaller(b)
	tag := benchKey(b, c)
	body := []byte(`{"plaintext":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`)
	for _, api := range []struct{ name, path string }{
		{"api=2.0", "/kms/v1/keys/" + tag + "/encrypt"},
		{"api=3.0", "/kms/v3/keys/" + tag + "/encrypt"},
	} {
		b.Run(api.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rc.post(b, api.path, body)
				}
			})
		})
	}
}

// BenchmarkV3EncryptAES32BInterleaved sends a 2.0 and a 3.0 encrypt in turn
// from each client and reports the mean latency of each API, so that a
// change in the machine's load during the run weighs on both alike.
func BenchmarkV3EncryptAES32BInterleaved(b *testing.B) {
	rc, c := newRawCaller(b)
	tag := benchKey(b, c)
	body := []byte(`{"plaintext":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`)
	v2, v3 := "/kms/v1/keys/"+tag+"/encrypt", "/kms/v3/keys/"+tag+"/encrypt"
	var ns2, ns3, n atomic.Int64
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			first, second, a, z := v2, v3, &ns2, &ns3
			if i%2 == 1 { // alternate which goes first
				first, second, a, z = v3, v2, &ns3, &ns2
			}
			t := time.Now()
			rc.post(b, first, body)
			a.Add(int64(time.Since(t)))
			t = time.Now()
			rc.post(b, second, body)
			z.Add(int64(time.Since(t)))
			n.Add(1)
		}
	})
	b.ReportMetric(float64(ns2.Load())/float64(n.Load()), "ns/v2.0-call")
	b.ReportMetric(float64(ns3.Load())/float64(n.Load()), "ns/v3.0-call")
}

// BenchmarkV3BatchEncrypt100x32B: items per second of 100-item batch
// encrypts of 32-byte items against single 3.0 encrypts, each at 16
// concurrent clients. The issue wants the batch at ≥ 20× the singles.
func BenchmarkV3BatchEncrypt100x32B(b *testing.B) {
	rc, c := newRawCaller(b)
	tag := benchKey(b, c)
	item := `{"plaintext":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`
	single := []byte(item)
	batch := []byte(`{"requests":[` + strings.Repeat(item+",", 99) + item + `]}`)
	par := max(1, 16/runtime.GOMAXPROCS(0)) // 16 goroutines
	for _, m := range []struct {
		name  string
		path  string
		body  []byte
		items int64
	}{
		{"single", "/kms/v3/keys/" + tag + "/encrypt", single, 1},
		{"batch100", "/kms/v3/keys/" + tag + "/batch-encrypt", batch, 100},
	} {
		b.Run(m.name, func(b *testing.B) {
			var done atomic.Int64
			b.SetParallelism(par)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rc.post(b, m.path, m.body)
					done.Add(m.items)
				}
			})
			b.ReportMetric(float64(done.Load())/b.Elapsed().Seconds(), "items/s")
		})
	}
}
