package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/client"
	"github.com/nkms/nkms/internal/sigv2"
	"github.com/nkms/nkms/internal/testkit"
	"github.com/nkms/nkms/store/bolt"
	"github.com/nkms/nkms/store/cache"
	"github.com/nkms/nkms/store/mem"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// t0 is the fixed clock of every API test.
var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// env is one server over a mem store, with one admin access key per keystore.
type env struct {
	t     testing.TB
	srv   *httptest.Server
	svc   *nkms.Service
	clk   *testkit.Clock
	creds map[int64]*nkms.Credentials
	logs  *testkit.Buffer
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, nil)
}

// newEnvWith is newEnv with configure applied to the server's api.Config.
func newEnvWith(t testing.TB, configure func(*api.Config)) *env {
	t.Helper()
	root := testkit.RootKey(t)
	clk := testkit.NewClock(t0)
	logs := &testkit.Buffer{}
	log := newLogger(logs)
	svc := &nkms.Service{Store: mem.New(), Root: root, Now: clk.Now, DeletionWindow: nkms.DefaultDeletionWindow, Log: log}
	e := &env{t: t, svc: svc, clk: clk, creds: map[int64]*nkms.Credentials{}, logs: logs}
	cfg := api.Config{PublicURL: "https://kms.example", Log: log}
	if configure != nil {
		configure(&cfg)
	}
	e.srv = httptest.NewServer(api.New(svc, cfg))
	t.Cleanup(e.srv.Close)
	first, err := svc.Bootstrap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.creds[1] = first
	admin := nkms.Caller{AccessKey: first.AccessKey, Keystore: 1, Role: nkms.RoleAdmin}
	second, err := svc.CreateAccessKey(context.Background(), admin, 2, nkms.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	e.creds[2] = second
	return e
}

// client returns a client of the given keystore's access key.
func (e *env) client(keystore int64, opts ...client.Option) *client.Client {
	e.t.Helper()
	cr := e.creds[keystore]
	c, err := client.New(e.srv.URL, cr.AccessKey, cr.SecretKey, append([]client.Option{client.WithClock(e.clk.Now)}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// raw sends a request signed by keystore 1's access key, with the body as
// given, and returns the status and body.
func (e *env) raw(method, path, body string) (int, []byte) {
	e.t.Helper()
	return e.rawWith(method, path, body, func(r *http.Request) {
		sigv2.SignRequest(r, e.creds[1].AccessKey, []byte(e.creds[1].SecretKey), e.clk.Now())
	})
}

func (e *env) rawWith(method, path, body string, prepare func(*http.Request)) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	if prepare != nil {
		prepare(r)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, b
}

var (
	tagRE    = regexp.MustCompile(`[0-9a-f]{64}`)
	cipherRE = regexp.MustCompile(`ncpkms:v([0-9]+):[A-Za-z0-9+/=]+`)
	pemRE    = regexp.MustCompile(`-----BEGIN PUBLIC KEY-----[^"]*-----END PUBLIC KEY-----\\n`)
	b64RE    = regexp.MustCompile(`"(plaintext|secretKey|accessKey)":"[^"]+"`)
	reqIDRE  = regexp.MustCompile(`"requestId":"[0-9a-f]+"`)
	jwtRE    = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)
	genIDRE  = regexp.MustCompile(`"tokenGeneratorId":"[0-9a-f]+"`)
	akIDRE   = regexp.MustCompile(`"id":"NK[A-Z0-9]+"`)
)

// normalize replaces the random parts of a body so that it can be compared
// with a golden file, and indents it.
func normalize(body []byte) []byte {
	b := tagRE.ReplaceAll(body, []byte("<keyTag>"))
	b = cipherRE.ReplaceAll(b, []byte("ncpkms:v$1:<base64>"))
	b = pemRE.ReplaceAll(b, []byte("<pem>"))
	b = b64RE.ReplaceAll(b, []byte(`"$1":"<random>"`))
	b = reqIDRE.ReplaceAll(b, []byte(`"requestId":"<id>"`))
	b = jwtRE.ReplaceAll(b, []byte("<jwt>"))
	b = genIDRE.ReplaceAll(b, []byte(`"tokenGeneratorId":"<id>"`))
	b = akIDRE.ReplaceAll(b, []byte(`"id":"<accessKey>"`))
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return b
	}
	return append(out.Bytes(), '\n')
}

// golden compares a status and body with testdata/<name>.golden (-update rewrites it).
func golden(t testing.TB, name string, status int, body []byte) {
	t.Helper()
	got := append([]byte(fmt.Sprintf("HTTP %d\n", status)), normalize(body)...)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./api -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
	}
}

func newLogger(w *testkit.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// serverStack is what nkms server runs: the cache over a bolt file, the key
// cache, real time, and (with usageLog) the background usage-log recorder;
// it returns the service, an admin client of a loopback server over it, and
// the server's URL. configure, if any, adjusts the server's api.Config.
func serverStack(t testing.TB, usageLog bool, configure ...func(*api.Config)) (*nkms.Service, *client.Client, string) {
	t.Helper()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "nkms.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := &nkms.Service{Store: cache.New(st, 0), Root: testkit.RootKey(t), Now: time.Now}
	if usageLog {
		svc.Recorder = nkms.NewRecorder(svc.Store, 0, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { svc.Recorder.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	var cfg api.Config
	for _, f := range configure {
		f(&cfg)
	}
	srv := httptest.NewServer(api.New(svc, cfg))
	t.Cleanup(srv.Close)
	admin, err := svc.Bootstrap(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(srv.URL, admin.AccessKey, admin.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	return svc, c, srv.URL
}
