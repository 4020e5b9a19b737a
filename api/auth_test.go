package api_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nkms/nkms"
	"github.com/nkms/nkms/api"
	"github.com/nkms/nkms/client"
	kcrypto "github.com/nkms/nkms/internal/crypto"
	"github.com/nkms/nkms/internal/sigv2"
)

func TestAuthentication(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ak, sk := e.creds[1].AccessKey, e.creds[1].SecretKey
	ms := func(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }
	sign := func(method, uri, ts, key, secret string) string {
		return sigv2.Sign([]byte(secret), method, uri, ts, key)
	}
	headers := func(ts, key, sig, sigHeader string) func(*http.Request) {
		return func(r *http.Request) {
			r.Header.Set(sigv2.HeaderTimestamp, ts)
			r.Header.Set(sigv2.HeaderAccessKey, key)
			r.Header.Set(sigHeader, sig)
		}
	}
	now := e.clk.Now()
	uri := "/kms/v1/keys?pageNo=1&pageSize=5"
	for _, tc := range []struct {
		name   string
		method string
		prep   func(*http.Request)
		status int
	}{
		{"valid v2", "GET", headers(ms(now), ak, sign("GET", uri, ms(now), ak, sk), sigv2.HeaderSignatureV2), 200},
		{"valid v1 header", "GET", headers(ms(now), ak, sign("GET", uri, ms(now), ak, sk), sigv2.HeaderSignatureV1), 200},
		{"4m59s skew", "GET", headers(ms(now.Add(-299*time.Second)), ak, sign("GET", uri, ms(now.Add(-299*time.Second)), ak, sk), sigv2.HeaderSignatureV2), 200},
		{"5m skew", "GET", headers(ms(now.Add(-5*time.Minute)), ak, sign("GET", uri, ms(now.Add(-5*time.Minute)), ak, sk), sigv2.HeaderSignatureV2), 401},
		{"5m in the future", "GET", headers(ms(now.Add(5*time.Minute)), ak, sign("GET", uri, ms(now.Add(5*time.Minute)), ak, sk), sigv2.HeaderSignatureV2), 401},
		{"seconds timestamp", "GET", headers("1764234000", ak, sign("GET", uri, "1764234000", ak, sk), sigv2.HeaderSignatureV2), 401},
		{"wrong secret", "GET", headers(ms(now), ak, sign("GET", uri, ms(now), ak, "wrong-secret-key"), sigv2.HeaderSignatureV2), 401},
		{"signed other query", "GET", headers(ms(now), ak, sign("GET", "/kms/v1/keys?pageNo=2&pageSize=5", ms(now), ak, sk), sigv2.HeaderSignatureV2), 401},
		{"signed other method", "GET", headers(ms(now), ak, sign("POST", uri, ms(now), ak, sk), sigv2.HeaderSignatureV2), 401},
		{"unknown access key", "GET", headers(ms(now), "NOBODY", sign("GET", uri, ms(now), "NOBODY", sk), sigv2.HeaderSignatureV2), 401},
		{"no signature", "GET", headers(ms(now), ak, "", sigv2.HeaderSignatureV2), 401},
		{"token only", "GET", func(r *http.Request) { r.Header.Set("x-ncp-ocapi-token", "eyJhbGciOiJIUzI1NiJ9.e30.x") }, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.rawWith(tc.method, uri, "", tc.prep)
			if status != tc.status {
				t.Fatalf("got %d %s, want %d", status, body, tc.status)
			}
			if status == 401 && !strings.Contains(string(body), `"errorCode":"200"`) {
				t.Fatalf("401 body %s, want gateway errorCode 200", body)
			}
			if strings.Contains(string(body), sk) {
				t.Fatal("the secret key appears in the answer")
			}
		})
	}
	if strings.Contains(e.logs.String(), sk) {
		t.Fatal("the secret key appears in the log")
	}
}

// TestPermissionDenied: an access key without the admin role cannot create access keys.
func TestPermissionDenied(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	secret := "viewer-secret-0123456789"
	sealed, err := e.svc.Root.Seal([]byte(secret), kcrypto.SealSecretAD("VIEWER"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Store.PutAccessKey(ctx, &nkms.AccessKey{ID: "VIEWER", Keystore: 1, Role: "viewer", SealedSecret: sealed}); err != nil {
		t.Fatal(err)
	}
	status, b := e.rawWith("POST", "/nkms/v1/access-keys", `{"keystoreId":9}`, func(r *http.Request) {
		sigv2.SignRequest(r, "VIEWER", []byte(secret), e.clk.Now())
	})
	golden(t, "error_401_permission", status, b)
}

// failingStore fails every read, to show what an unexpected error looks like.
type failingStore struct{ nkms.Store }

func (failingStore) Get(context.Context, string) (*nkms.Key, error) {
	return nil, errors.New("disk on fire at /var/lib/secret-path")
}

func TestInternalErrorIsOpaqueAndLogged(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.svc.Store = failingStore{e.svc.Store}
	log := newLogger(e.logs)
	e.srv.Config.Handler = api.New(e.svc, api.Config{Log: log})
	status, b := e.raw("GET", "/kms/v1/keys/"+strings.Repeat("a", 64), "")
	golden(t, "error_500_internal", status, b)
	if !strings.Contains(e.logs.String(), "disk on fire") || !strings.Contains(e.logs.String(), "requestId=") {
		t.Fatalf("internal error not logged with a request id:\n%s", e.logs.String())
	}
}

// TestKeystoresIsolateThroughHTTP: with two access keys in two keystores,
// neither sees, uses, rotates or deletes the other's keys (404).
func TestKeystoresIsolateThroughHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	alice, bob := e.client(1), e.client(2)
	k, err := alice.CreateKey(ctx, client.CreateKeyRequest{KeyName: "private", KeyType: "AES256"})
	if err != nil {
		t.Fatal(err)
	}
	ct, err := alice.Encrypt(ctx, k.KeyTag, []byte("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"info":    func() error { _, err := bob.GetKey(ctx, k.KeyTag); return err },
		"decrypt": func() error { _, err := bob.Decrypt(ctx, k.KeyTag, ct, nil); return err },
		"rotate":  func() error { _, err := bob.Rotate(ctx, k.KeyTag); return err },
		"request": func() error { _, err := bob.RequestDeletion(ctx, k.KeyTag); return err },
		"delete":  func() error { return bob.DeleteKey(ctx, k.KeyTag) },
	}
	for name, call := range calls {
		var ce *client.Error
		if err := call(); !errors.As(err, &ce) || ce.Status != 404 || ce.Code != "NOT_FOUND" {
			t.Errorf("%s by the other keystore: got %v, want 404 NOT_FOUND", name, err)
		}
	}
	if l, err := bob.ListKeys(ctx, 1, 10); err != nil || l.TotalCount != 0 {
		t.Fatalf("the other keystore lists %+v (%v)", l, err)
	}
	if got, err := alice.GetKey(ctx, k.KeyTag); err != nil || got.Status != "ENABLE" || got.CurrentVersion != 1 {
		t.Fatalf("owner's key changed: %+v %v", got, err)
	}
}
